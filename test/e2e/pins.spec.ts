import { LruService } from 'src/lru';
import { RunningApp, startApp } from 'test/support/app';
import { fakePath } from 'test/support/fake-path';
import { until } from 'test/support/wait';

const PUT = { authorization: 'Bearer put-secret' };
const READ = { authorization: 'Bearer read-secret' };
const SIZE = 4096;

async function send(server: RunningApp, method: string, path: string, headers: Record<string, string> = {}, body?: Buffer | string) {
  const res = await fetch(`${server.url}${path}`, { method, headers, body });
  const text = await res.text();
  return { status: res.status, text, json: res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : undefined };
}

/** Uploads an unsigned path (NAR, then narinfo) with the put token; returns its hash. */
async function upload(server: RunningApp): Promise<string> {
  const path = fakePath('pinned', SIZE);
  expect((await send(server, 'PUT', path.narPath, PUT, path.nar)).status).toBe(204);
  expect((await send(server, 'PUT', `/${path.hash}.narinfo`, PUT, path.narinfo)).status).toBe(204);
  return path.hash;
}

describe('pins over HTTP', () => {
  let server: RunningApp;

  beforeAll(async () => {
    server = await startApp({
      'cache-allow-put-verb': 'true',
      'cache-get-token': 'read-secret',
      'cache-put-token': 'put-secret',
      // Smaller than one NAR: a run evicts everything it may.
      'cache-max-size': String(SIZE / 2),
    });
  });

  afterAll(() => server?.close());

  it('needs the put token to pin and unpin: 401 without it or with the read token, and nothing changes', async () => {
    const hash = await upload(server);
    for (const headers of [{}, READ, { authorization: 'Bearer wrong' }]) {
      expect((await send(server, 'POST', `/pin/${hash}.narinfo`, headers)).status).toBe(401);
      expect((await send(server, 'DELETE', `/pin/${hash}.narinfo`, headers)).status).toBe(401);
    }
    expect((await send(server, 'GET', '/pins', READ)).json).toEqual([]);

    const pinned = await send(server, 'POST', `/pin/${hash}.narinfo`, PUT);
    expect(pinned.status).toBe(200);
    expect(pinned.json).toMatchObject({ hash, expiresAt: null, active: true, stored: true });
    expect((await send(server, 'DELETE', `/pin/${hash}.narinfo`, PUT)).status).toBe(204);
    expect((await send(server, 'DELETE', `/pin/${hash}.narinfo`, PUT)).status).toBe(404);
  });

  it('lists the pins with their expiry at GET /pins (read token), beside the narinfo routes', async () => {
    const stored = await upload(server);
    const waiting = fakePath('not-yet', 10).hash;
    const before = Date.now();
    expect((await send(server, 'POST', `/pin/${stored}.narinfo?ttl=30d`, PUT)).status).toBe(200);
    expect((await send(server, 'POST', `/pin/${waiting}.narinfo`, PUT)).status).toBe(200);

    expect((await send(server, 'GET', '/pins')).status).toBe(401);
    const listed = await send(server, 'GET', '/pins', READ);
    expect(listed.status).toBe(200);
    const byHash = new Map((listed.json as Array<{ hash: string; expiresAt: string | null }>).map((p) => [p.hash, p]));
    expect(byHash.get(waiting)).toMatchObject({ expiresAt: null, active: true, stored: false });
    const expiresAt = Date.parse(byHash.get(stored)!.expiresAt!);
    expect(expiresAt - before).toBeGreaterThanOrEqual(30 * 86_400_000);
    expect(expiresAt - Date.now()).toBeLessThanOrEqual(30 * 86_400_000);
    // The static /pins did not take the narinfo routes' place.
    expect((await send(server, 'GET', `/${stored}.narinfo`, READ)).status).toBe(200);
    expect((await send(server, 'GET', `/pins.narinfo`, READ)).status).toBe(400);

    for (const hash of [stored, waiting]) expect((await send(server, 'DELETE', `/pin/${hash}.narinfo`, PUT)).status).toBe(204);
  });

  it('refuses a malformed name or TTL with a 400 and pins nothing', async () => {
    const hash = fakePath('x', 10).hash;
    for (const path of [`/pin/${hash}.narinfo?ttl=soon`, `/pin/${hash}.narinfo?ttl=0d`, '/pin/not-a-hash.narinfo', `/pin/${hash}`]) {
      expect({ path, status: (await send(server, 'POST', path, PUT)).status }).toEqual({ path, status: 400 });
    }
    expect((await send(server, 'GET', '/pins', READ)).json).toEqual([]);
  });

  it('keeps a pinned path through LRU runs until its TTL passes; then the pin is inactive and the path goes', async () => {
    const hash = await upload(server);
    expect((await send(server, 'POST', `/pin/${hash}.narinfo?ttl=3s`, PUT)).status).toBe(200);

    await server.app.get(LruService).runOnce();
    expect((await send(server, 'GET', `/${hash}.narinfo`, READ)).status).toBe(200);

    await until('the pin has expired', async () => {
      const [pin] = (await send(server, 'GET', '/pins', READ)).json as Array<{ active: boolean }>;
      return pin.active === false;
    });
    await server.app.get(LruService).runOnce();

    expect((await send(server, 'GET', `/${hash}.narinfo`, READ)).status).toBe(404);
    expect((await send(server, 'GET', '/pins', READ)).json).toEqual([]);
  });
});

describe('pins over HTTP without a put token', () => {
  let server: RunningApp;
  beforeAll(async () => {
    server = await startApp({});
  });
  afterAll(() => server?.close());

  it('are refused (405): an anonymous pin would defeat the size limit', async () => {
    const hash = fakePath('x', 10).hash;
    const res = await send(server, 'POST', `/pin/${hash}.narinfo`);
    expect(res.status).toBe(405);
    expect(res.text).toMatch(/put token/);
    expect((await send(server, 'GET', '/pins')).json).toEqual([]);
  });
});
