import { request } from 'node:http';
import { NarInfoRepository } from 'src/database';
import { parseNarInfo, serializeNarInfo } from 'src/nix';
import { RunningApp, startApp } from 'test/support/app';
import { fakePath } from 'test/support/fake-path';

const bearer = { authorization: 'Bearer read-token' };

/**
 * Narinfo hits as Fastify serves them without Nest (HotRoutes), and before Fastify at the server's
 * front door (a GET at the root), from bytes kept per row version
 * (NarInfoTexts): what they may never do is serve a row that changed or went away, wherever the
 * change was made.
 */
describe('narinfo hits', () => {
  let server: RunningApp;
  beforeAll(async () => {
    server = await startApp({ 'cache-get-token': 'read-token', 'cache-allow-put-verb': 'true', 'cache-allow-delete-verb': 'true' });
  });
  afterAll(() => server?.close());

  const send = async (method: string, path: string, body?: string | Buffer) => {
    const res = await fetch(`${server.url}${path}`, { method, headers: bearer, body });
    return { status: res.status, text: await res.text(), length: res.headers.get('content-length') };
  };
  const ourSignature = (text: string) => text.split('\n').find((line) => line.startsWith('Sig: ncps-test-1:'));

  it('serves what was uploaded, signed, the same on GET, HEAD and under /upload/', async () => {
    const path = fakePath('hit', 100);
    expect((await send('PUT', path.narPath, path.nar)).status).toBe(204);
    expect((await send('PUT', `/${path.hash}.narinfo`, path.narinfo)).status).toBe(204);
    const first = await send('GET', `/${path.hash}.narinfo`);
    expect(first.status).toBe(200);
    expect(parseNarInfo(first.text)).toMatchObject({ storePath: path.info.storePath, narHash: path.info.narHash });
    expect(ourSignature(first.text)).toBeDefined();
    expect(await send('GET', `/upload/${path.hash}.narinfo`)).toEqual(first);
    expect(await send('GET', `/${path.hash}.narinfo`)).toEqual(first);
    expect(await send('HEAD', `/${path.hash}.narinfo`)).toEqual({ status: 200, text: '', length: String(Buffer.byteLength(first.text)) });
  });

  it('serves a re-upload and a deletion at once, never the bytes kept for the row before', async () => {
    const path = fakePath('replaced', 100);
    await send('PUT', path.narPath, path.nar);
    await send('PUT', `/${path.hash}.narinfo`, path.narinfo);
    const before = await send('GET', `/${path.hash}.narinfo`);
    const deriver = `${path.hash}-replaced.drv`;
    await send('PUT', `/${path.hash}.narinfo`, serializeNarInfo({ ...path.info, deriver }));
    const after = await send('GET', `/${path.hash}.narinfo`);
    expect(after.text).not.toEqual(before.text);
    expect(parseNarInfo(after.text).deriver).toBe(deriver);
    expect((await send('DELETE', `/${path.hash}.narinfo`)).status).toBe(204);
    expect((await send('GET', `/${path.hash}.narinfo`)).status).toBe(404);
  });

  it('serves a row changed behind its back (as by another instance), and stops signing a row no longer verified', async () => {
    const path = fakePath('elsewhere', 100);
    await send('PUT', path.narPath, path.nar);
    await send('PUT', `/${path.hash}.narinfo`, path.narinfo);
    const before = await send('GET', `/${path.hash}.narinfo`);
    const narInfos = server.app.get(NarInfoRepository);
    const row = (await narInfos.findByHash(path.hash))!;
    const { id: _id, ...stored } = row;
    await narInfos.upsert({ ...stored, refs: `${path.hash}-elsewhere`, verified: false });
    const after = await send('GET', `/${path.hash}.narinfo`);
    expect(after.text).not.toEqual(before.text);
    expect(parseNarInfo(after.text).references).toEqual([`${path.hash}-elsewhere`]);
    expect(ourSignature(after.text)).toBeUndefined();
    await narInfos.deleteByHash(path.hash);
    expect((await send('GET', `/${path.hash}.narinfo`)).status).toBe(404);
  });

  it('answers a hit at the root (the front door) with the headers of the route behind it (under /upload/)', async () => {
    const path = fakePath('front', 100);
    await send('PUT', path.narPath, path.nar);
    await send('PUT', `/${path.hash}.narinfo`, path.narinfo);
    const heads = async (url: string, id: string) => {
      const res = await fetch(`${server.url}${url}`, { headers: { ...bearer, 'x-request-id': id } });
      const text = await res.text();
      const { date: _date, ...headers } = Object.fromEntries(res.headers);
      return { status: res.status, headers, text };
    };
    const front = await heads(`/${path.hash}.narinfo`, 'same-id');
    expect(front).toMatchObject({ status: 200, headers: { 'content-type': 'text/x-nix-narinfo', 'x-request-id': 'same-id' } });
    expect(await heads(`/upload/${path.hash}.narinfo`, 'same-id')).toEqual(front);
    // Another hash, unknown: no front-door answer, the route's 404 (and its miss) instead.
    expect((await heads(`/${fakePath('unknown', 1).hash}.narinfo`, 'other')).status).toBe(404);
    // Anything the door does not take plainly is the route's to decode and judge.
    expect((await heads(`/${path.hash}.narinfo?x=1`, 'q')).text).toBe(front.text);
    const encoded = `%${path.hash.charCodeAt(0).toString(16)}${path.hash.slice(1)}`;
    expect((await heads(`/${encoded}.narinfo`, 'enc')).text).toBe(front.text);
  });

  it('looks a miss up once before the fetch, which looks again under its lock: the front door tells the route', async () => {
    const narInfos = server.app.get(NarInfoRepository);
    const lookups = jest.spyOn(narInfos, 'findServedByHash');
    try {
      const path = fakePath('missing', 1);
      expect((await send('GET', `/${path.hash}.narinfo`)).status).toBe(404);
      expect(lookups.mock.calls.filter(([hash]) => hash === path.hash)).toHaveLength(2);
      // Under /upload/ the door is not asked: the route looks up itself.
      const other = fakePath('missing-upload', 1);
      expect((await send('GET', `/upload/${other.hash}.narinfo`)).status).toBe(404);
      expect(lookups.mock.calls.filter(([hash]) => hash === other.hash)).toHaveLength(2);
    } finally {
      lookups.mockRestore();
    }
  });

  it('refuses a read without the token, as before, and keeps the connection open for the next one', async () => {
    const { port } = new URL(server.url);
    const refused = await new Promise<{ status?: number; connection?: string; challenge?: string }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: `/${fakePath('nobody', 1).hash}.narinfo` }, (res) => {
        res.resume();
        resolve({ status: res.statusCode, connection: res.headers.connection, challenge: res.headers['www-authenticate'] });
      });
      req.on('error', reject);
      req.end();
    });
    expect(refused).toEqual({ status: 401, connection: 'keep-alive', challenge: 'Bearer, Basic realm="ncps"' });
  });
});
