import { RunningApp, startApp } from 'test/support/app';
import { fakePath } from 'test/support/fake-path';

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const basic = (token: string) => ({ authorization: `Basic ${Buffer.from(`nix:${token}`).toString('base64')}` });

/** An uncompressed "NAR" named by the nix32 SHA-256 of its bytes, and a narinfo pointing at it. */
function makeUpload(): { narPath: string; nar: Buffer; narinfoPath: string; narinfo: string } {
  const { narPath, nar, hash, narinfo } = fakePath('write-auth', 1000);
  return { narPath, nar, narinfoPath: `/${hash}.narinfo`, narinfo };
}

/** PUT and DELETE need the put token (which defaults to the get token); reads keep needing the get token. */
describe('authenticated writes', () => {
  const servers: RunningApp[] = [];
  afterAll(() => Promise.all(servers.map((s) => s.close())));

  async function start(flags: Record<string, unknown>): Promise<RunningApp> {
    const server = await startApp({ 'cache-allow-put-verb': 'true', 'cache-allow-delete-verb': 'true', ...flags });
    servers.push(server);
    return server;
  }

  async function send(server: RunningApp, method: string, path: string, headers: Record<string, string> = {}, body?: Buffer | string) {
    const res = await fetch(`${server.url}${path}`, { method, headers, body });
    return { status: res.status, challenge: res.headers.get('www-authenticate'), text: await res.text() };
  }

  describe('with only a get token: writes need it too', () => {
    let server: RunningApp;
    beforeAll(async () => {
      server = await start({ 'cache-get-token': 'read-token' });
    });

    it('answers 401 with a challenge to writes without a token, or with a wrong one, and stores nothing', async () => {
      const up = makeUpload();
      for (const headers of [{}, bearer('wrong'), basic('wrong'), bearer('read-token-and-more'), { authorization: 'read-token' }]) {
        for (const [method, path, body] of [
          ['PUT', up.narPath, up.nar],
          ['PUT', `/upload${up.narPath}`, up.nar],
          ['PUT', up.narinfoPath, up.narinfo],
          ['DELETE', up.narinfoPath, undefined],
          ['DELETE', up.narPath, undefined],
        ] as const) {
          const res = await send(server, method, path, headers, body);
          expect({ method, path, status: res.status }).toEqual({ method, path, status: 401 });
          expect(res.challenge).toMatch(/Basic/);
          expect(res.text).toMatch(/token/);
        }
      }
      expect((await send(server, 'HEAD', up.narPath, bearer('read-token'))).status).toBe(404);
      expect((await send(server, 'GET', up.narinfoPath, bearer('read-token'))).status).toBe(404);
    });

    it('answers 401 before looking at the request: a malformed name gets 401, not 400', async () => {
      expect((await send(server, 'PUT', '/not-a-hash.narinfo', {}, 'x')).status).toBe(401);
      expect((await send(server, 'PUT', '/not-a-hash.narinfo', bearer('read-token'), 'x')).status).toBe(400);
    });

    it('accepts writes with the get token as Bearer or as the Basic password (fallback)', async () => {
      const up = makeUpload();
      expect((await send(server, 'PUT', up.narPath, bearer('read-token'), up.nar)).status).toBe(204);
      expect((await send(server, 'PUT', up.narinfoPath, basic('read-token'), up.narinfo)).status).toBe(204);
      const served = await send(server, 'GET', up.narinfoPath, bearer('read-token'));
      expect(served.status).toBe(200);
      expect(served.text).toContain(up.narPath.slice(1));
      expect((await send(server, 'DELETE', up.narinfoPath, basic('read-token'))).status).toBe(204);
      expect((await send(server, 'DELETE', up.narPath, bearer('read-token'))).status).toBe(204);
      expect((await send(server, 'GET', up.narinfoPath, bearer('read-token'))).status).toBe(404);
    });
  });

  describe('with a get token and a put token', () => {
    let server: RunningApp;
    beforeAll(async () => {
      server = await start({ 'cache-get-token': 'read-token', 'cache-put-token': 'write-token' });
    });

    it('refuses writes with the get token', async () => {
      const up = makeUpload();
      expect((await send(server, 'PUT', up.narPath, bearer('read-token'), up.nar)).status).toBe(401);
      expect((await send(server, 'PUT', up.narPath, basic('read-token'), up.nar)).status).toBe(401);
    });

    it('accepts writes with the put token as Bearer and as Basic, and reads with either token', async () => {
      const up = makeUpload();
      expect((await send(server, 'PUT', up.narPath, bearer('write-token'), up.nar)).status).toBe(204);
      expect((await send(server, 'PUT', `/upload${up.narinfoPath}`, basic('write-token'), up.narinfo)).status).toBe(204);
      expect((await send(server, 'GET', up.narinfoPath, bearer('read-token'))).status).toBe(200);
      expect((await send(server, 'GET', up.narinfoPath, basic('write-token'))).status).toBe(200);
      expect((await send(server, 'GET', up.narinfoPath)).status).toBe(401);
      expect((await send(server, 'DELETE', up.narinfoPath, bearer('read-token'))).status).toBe(401);
      expect((await send(server, 'DELETE', up.narinfoPath, bearer('write-token'))).status).toBe(204);
    });
  });

  it('with a put token only, reads stay open and writes need it', async () => {
    const server = await start({ 'cache-put-token': 'write-token' });
    const up = makeUpload();
    expect((await send(server, 'PUT', up.narPath, {}, up.nar)).status).toBe(401);
    expect((await send(server, 'PUT', up.narPath, bearer('write-token'), up.nar)).status).toBe(204);
    expect((await send(server, 'HEAD', up.narPath)).status).toBe(200);
  });

  it('checks the token before the verb: 401 without it, 405 with it when writes are disabled', async () => {
    const server = await startApp({ 'cache-get-token': 'read-token' });
    servers.push(server);
    const up = makeUpload();
    expect((await send(server, 'PUT', up.narPath, {}, up.nar)).status).toBe(401);
    expect((await send(server, 'DELETE', up.narinfoPath)).status).toBe(401);
    expect((await send(server, 'PUT', up.narPath, bearer('read-token'), up.nar)).status).toBe(405);
    expect((await send(server, 'DELETE', up.narinfoPath, bearer('read-token'))).status).toBe(405);
  });
});
