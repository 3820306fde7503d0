import { NarInfoRoutes } from 'src/cache/narinfo.routes';
import { NarInfoRepository } from 'src/database';
import { NarInfoService } from 'src/cache/narinfo.service';
import { formatPublicKey, generateKeyPair, parseNarInfo, serializeNarInfo, signedOnlyBy } from 'src/nix';
import { RunningApp, startApp } from 'test/support/app';
import { FakeUpstream } from 'test/support/fake-upstream';
import { FakePath, fakePath } from 'test/support/fake-path';

/**
 * Narinfo misses at the root, which the server's front door fetches itself (without Fastify's
 * routing and reply), against the same misses under /upload/, which the route behind the door
 * serves: both must answer alike, ask the upstream alike, and a failure at the door must be
 * answered by that route without a second fetch.
 */
describe('narinfo misses at the front door', () => {
  const upstreamKey = generateKeyPair('door-upstream-1');
  let upstream: FakeUpstream;
  let server: RunningApp;
  let routeCalls: jest.SpyInstance;
  let fetches: jest.SpyInstance;

  beforeAll(async () => {
    upstream = await FakeUpstream.start();
    server = await startApp({
      'cache-upstream-url': [upstream.url],
      'cache-upstream-public-key': [formatPublicKey(upstreamKey.publicKey)],
    });
    // The route behind the door (a private method: what runs when Fastify serves the request).
    routeCalls = jest.spyOn(server.app.get<NarInfoRoutes, { narInfo: () => Promise<Buffer> }>(NarInfoRoutes), 'narInfo');
    fetches = jest.spyOn(server.app.get(NarInfoService), 'fetchNarInfo');
  });
  afterAll(async () => {
    await server?.close();
    await upstream?.stop();
  });
  beforeEach(() => {
    routeCalls.mockClear();
    fetches.mockClear();
  });

  /** A path the upstream offers, signed by its key, NAR included (the miss prefetches it). */
  const offered = (name: string): FakePath => {
    const path = fakePath(name, 64);
    upstream.serve(`/${path.hash}.narinfo`, serializeNarInfo(signedOnlyBy(path.info, upstreamKey.secretKey)));
    upstream.serve(path.narPath, path.nar);
    return path;
  };
  const get = async (url: string, id?: string) => {
    const res = await fetch(`${server.url}${url}`, { headers: id ? { 'x-request-id': id } : {} });
    return { status: res.status, type: res.headers.get('content-type'), id: res.headers.get('x-request-id'), text: await res.text() };
  };
  const ourSigs = (text: string) => text.split('\n').filter((line) => line.startsWith('Sig: ncps-test-1:'));

  it('fetches a miss at the root itself: the upstream narinfo, verified and signed by us, as the route serves one', async () => {
    const atDoor = offered('door');
    const behind = offered('behind');

    const door = await get(`/${atDoor.hash}.narinfo`, 'door-miss');
    expect(routeCalls).not.toHaveBeenCalled();
    const route = await get(`/upload/${behind.hash}.narinfo`, 'route-miss');
    expect(routeCalls).toHaveBeenCalledTimes(1);

    for (const [res, path, id] of [
      [door, atDoor, 'door-miss'],
      [route, behind, 'route-miss'],
    ] as const) {
      expect(res).toMatchObject({ status: 200, type: 'text/x-nix-narinfo', id });
      expect(parseNarInfo(res.text)).toMatchObject({ storePath: path.info.storePath, narHash: path.info.narHash });
      expect(ourSigs(res.text)).toHaveLength(1);
      expect(upstream.count(`/${path.hash}.narinfo`)).toBe(1);
    }
    expect(fetches).toHaveBeenCalledTimes(2);
    // Stored: the next request is a hit, the same bytes, no upstream request.
    expect((await get(`/${atDoor.hash}.narinfo`)).text).toBe(door.text);
    expect(upstream.count(`/${atDoor.hash}.narinfo`)).toBe(1);
  });

  it('has the route answer a fetch that failed at the door, with its error and request id, without fetching again', async () => {
    const failing = [offered('failing-door'), offered('failing-route')];
    // The fetch's own lookup (under its lock, the second one of a miss) fails, as a database gone would.
    const lookups = jest.spyOn(server.app.get(NarInfoRepository), 'findServedByHash');
    const seen = new Map<string, number>();
    const real = NarInfoRepository.prototype.findServedByHash;
    lookups.mockImplementation(function (this: NarInfoRepository, hash: string) {
      seen.set(hash, (seen.get(hash) ?? 0) + 1);
      return seen.get(hash) === 2 ? Promise.reject(new Error('database unavailable')) : real.call(this, hash);
    });
    try {
      const door = await get(`/${failing[0].hash}.narinfo`, 'door-fail');
      expect(routeCalls).toHaveBeenCalledTimes(1);
      expect(fetches).toHaveBeenCalledTimes(1);
      const route = await get(`/upload/${failing[1].hash}.narinfo`, 'route-fail');
      expect(fetches).toHaveBeenCalledTimes(2);

      expect(door).toEqual({ status: 500, type: 'text/plain; charset=utf-8', id: 'door-fail', text: 'internal error\n' });
      expect(route).toEqual({ ...door, id: 'route-fail' });
      expect([...seen.values()]).toEqual([2, 2]);
      for (const path of failing) expect(upstream.count(`/${path.hash}.narinfo`)).toBe(0);
    } finally {
      lookups.mockRestore();
    }
  });

  it('answers 404 through the route when no upstream has the narinfo or one failed, keeping the id given at the door', async () => {
    const absent = fakePath('absent', 1);
    const failed = fakePath('failed', 1);
    upstream.route(`/${failed.hash}.narinfo`, { status: 500 });

    for (const path of [absent, failed]) {
      const res = await get(`/${path.hash}.narinfo`);
      expect(res).toMatchObject({ status: 404, text: 'narinfo not found\n' });
      expect(res.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(upstream.count(`/${path.hash}.narinfo`)).toBe(1);
    }
    expect(fetches).toHaveBeenCalledTimes(2);
    expect(routeCalls).toHaveBeenCalledTimes(2);
  });
});
