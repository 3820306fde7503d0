import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { RunningApp, startApp } from 'test/support/app';

const HASH = '0'.repeat(32);
const NAR_HASH = '1'.repeat(52);

/** Client mistakes get a 4xx with a short reason, and change nothing. */
describe('bad input', () => {
  let server: RunningApp;

  beforeAll(async () => {
    server = await startApp({ 'cache-allow-put-verb': 'true', 'cache-allow-delete-verb': 'true' });
  });
  afterAll(() => server.close());

  const req = (path: string, init?: RequestInit) => fetch(`${server.url}${path}`, init);

  async function storedFiles(): Promise<string[]> {
    const root = join(server.dataDir, 'storage');
    const entries = await readdir(root, { recursive: true, withFileTypes: true }).catch(() => []);
    return entries.filter((e) => e.isFile()).map((e) => e.name);
  }

  async function narinfoCount(): Promise<number> {
    const { DataSource } = await import('typeorm');
    const rows = await server.app.get(DataSource).query('SELECT COUNT(*) AS n FROM narinfos');
    return Number(rows[0].n);
  }

  it.each([
    ['GET', '/tooshort.narinfo', 400, /invalid store path hash/],
    ['GET', `/${'e'.repeat(32)}.narinfo`, 400, /invalid store path hash/],
    ['GET', `/nar/${NAR_HASH}.nar.rar`, 400, /unknown NAR extension/],
    ['GET', '/nar/abc.nar', 400, /invalid NAR hash/],
    ['GET', `/nar/${NAR_HASH}.tar`, 400, /expected <hash>\.nar/],
    ['GET', '/nar/..%2F..%2Fetc%2Fpasswd', 400, /expected <hash>\.nar/],
    ['GET', '/%2e%2e%2fdb.narinfo', 400, /expected <hash>\.narinfo/],
    ['GET', `/${HASH}.narinfo`, 404, /not found/],
    ['GET', `/nar/${NAR_HASH}.nar.xz`, 404, /not found/],
    ['DELETE', `/${HASH}.narinfo`, 404, /not found/],
  ])('%s %s → %i', async (method, path, status, reason) => {
    const res = await req(path, { method });
    expect(res.status).toBe(status);
    expect(await res.text()).toMatch(reason);
  });

  it('rejects malformed narinfo bodies with 400 and stores nothing', async () => {
    const bodies = [
      'not a narinfo',
      `StorePath: /nix/store/${HASH}-x\nURL: nar/${NAR_HASH}.nar\nCompression: none\nNarHash: sha256:${NAR_HASH}\n`,
      `StorePath: /nix/store/${HASH}-x\nURL: nar/${NAR_HASH}.nar\nCompression: none\nNarHash: sha256:zz\nNarSize: 5\n`,
      `StorePath: /nix/store/${'2'.repeat(32)}-x\nURL: nar/${NAR_HASH}.nar\nCompression: none\nNarHash: sha256:${NAR_HASH}\nNarSize: 5\n`,
      `StorePath: /nix/store/${HASH}-x\nURL: ../../etc/passwd\nCompression: none\nNarHash: sha256:${NAR_HASH}\nNarSize: 5\n`,
      `StorePath: /nix/store/${HASH}-x\nURL: nar/${NAR_HASH}.nar.xz\nCompression: zstd\nNarHash: sha256:${NAR_HASH}\nNarSize: 5\n`,
    ];
    for (const body of bodies) {
      const res = await req(`/${HASH}.narinfo`, { method: 'PUT', body });
      expect(res.status).toBe(400);
    }
    expect(await narinfoCount()).toBe(0);
  });

  it('answers 413 to an oversized narinfo body', async () => {
    const res = await req(`/${HASH}.narinfo`, { method: 'PUT', body: 'x'.repeat(2 * 1024 * 1024) });
    expect(res.status).toBe(413);
    expect(await narinfoCount()).toBe(0);
  });

  it('rejects a NAR whose body does not match the hash in its name, leaving nothing behind', async () => {
    const res = await req(`/upload/nar/${NAR_HASH}.nar.xz`, { method: 'PUT', body: 'not the right bytes' });
    expect(res.status).toBe(400);
    expect(await res.text()).toMatch(/does not match the hash/);
    expect(await storedFiles()).toEqual([]);
    expect(await readdir(server.config.cache.tempPath)).toEqual([]);
  });

  it('answers 405 to PUT and DELETE when they are disabled', async () => {
    const locked = await startApp();
    try {
      const put = await fetch(`${locked.url}/${HASH}.narinfo`, { method: 'PUT', body: 'x' });
      expect(put.status).toBe(405);
      const del = await fetch(`${locked.url}/nar/${NAR_HASH}.nar`, { method: 'DELETE' });
      expect(del.status).toBe(405);
    } finally {
      await locked.close();
    }
  });

  it('requires the get token on reads when one is set, but not on /pubkey and /healthz', async () => {
    const guarded = await startApp({ 'cache-get-token': 's3cret' });
    try {
      expect((await fetch(`${guarded.url}/${HASH}.narinfo`)).status).toBe(401);
      expect((await fetch(`${guarded.url}/nix-cache-info`)).status).toBe(401);
      const bearer = await fetch(`${guarded.url}/nix-cache-info`, { headers: { authorization: 'Bearer s3cret' } });
      expect(bearer.status).toBe(200);
      const basic = Buffer.from('nix:s3cret').toString('base64');
      const viaNetrc = await fetch(`${guarded.url}/${HASH}.narinfo`, { headers: { authorization: `Basic ${basic}` } });
      expect(viaNetrc.status).toBe(404);
      expect((await fetch(`${guarded.url}/nix-cache-info`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
      expect((await fetch(`${guarded.url}/pubkey`)).status).toBe(200);
      expect((await fetch(`${guarded.url}/healthz`)).status).toBe(200);
    } finally {
      await guarded.close();
    }
  });
});
