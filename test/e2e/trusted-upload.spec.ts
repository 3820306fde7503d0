import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { NarInfoRepository } from 'src/database';
import { NarInfo, formatPublicKey, generateKeyPair, serializeNarInfo, signedOnlyBy } from 'src/nix';
import { RunningApp, startApp } from 'test/support/app';
import { FakeUpstream } from 'test/support/fake-upstream';
import { fakePath } from 'test/support/fake-path';
import { NixWorkspace } from 'test/support/nix';

const hashOf = (storePath: string) => storePath.slice('/nix/store/'.length, '/nix/store/'.length + 32);
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/**
 * --cache-require-trusted-signature with the real Nix client: `nix copy --to` (sending the put token
 * from a netrc) lands only the paths a trusted upload key signed.
 */
describe('uploads under --cache-require-trusted-signature, with the real Nix client', () => {
  let nix: NixWorkspace;
  let server: RunningApp;
  let store: string;
  let writeNetrc: string;
  let readNetrc: string;
  let paths: { trusted: string; stranger: string; unsigned: string; noToken: string };

  beforeAll(async () => {
    nix = await NixWorkspace.create();
    store = join(nix.dir, 'source-store');
    await mkdir(store, { recursive: true });
    const [trusted, stranger, unsigned, noToken] = await nix.addFiles(store, {
      'trusted.txt': 'signed by a trusted key\n',
      'stranger.txt': 'signed by a key nobody listed\n',
      'unsigned.txt': 'signed by nobody\n',
      'no-token.txt': 'signed, but sent without the token\n',
    });
    paths = { trusted, stranger, unsigned, noToken };
    const uploader = await nix.generateKey('uploader-1');
    const other = await nix.generateKey('stranger-1');
    await nix.sign(store, uploader.secretPath, [trusted, noToken]);
    await nix.sign(store, other.secretPath, [stranger]);
    server = await startApp({
      'cache-allow-put-verb': 'true',
      'cache-get-token': 'read-token',
      'cache-put-token': 'write-token',
      'cache-require-trusted-signature': 'true',
      'cache-upload-trusted-key': [uploader.publicKey],
    });
    writeNetrc = await nix.netrcConfig(server.url, 'write-token');
    readNetrc = await nix.netrcConfig(server.url, 'read-token');
  }, 120_000);

  afterAll(async () => {
    await server?.close();
    await nix?.dispose();
  });

  const stored = (path: string) => server.app.get(NarInfoRepository).findByHash(hashOf(path));

  it('lands a path signed by a trusted key, then serves it signed by us', async () => {
    await nix.copyToHttp(store, `${server.url}/upload`, [paths.trusted], writeNetrc);
    expect(await stored(paths.trusted)).not.toBeNull();

    const pubkey = await (await fetch(`${server.url}/pubkey`)).text();
    const client = await nix.copyFromHttp(server.url, pubkey, [paths.trusted], undefined, readNetrc);
    expect(await nix.readStoreFile(client, paths.trusted)).toBe('signed by a trusted key\n');
  }, 60_000);

  it.each([
    ['signed by another key', 'stranger', /HTTP error 403.*no signature of the narinfo verifies with a trusted upload key/s],
    ['unsigned', 'unsigned', /HTTP error 403.*the narinfo is not signed/s],
  ] as const)(
    'refuses a path %s and stores no narinfo for it',
    async (_what, which, status) => {
      await expect(nix.copyToHttp(store, `${server.url}/upload`, [paths[which]], writeNetrc)).rejects.toThrow(status);
      expect(await stored(paths[which])).toBeNull();
      const res = await fetch(`${server.url}/${hashOf(paths[which])}.narinfo`, { headers: bearer('read-token') });
      expect(res.status).toBe(404);
    },
    60_000,
  );

  it('refuses a trusted path sent with the get token (which reads but does not write), or without a token', async () => {
    await expect(nix.copyToHttp(store, `${server.url}/upload`, [paths.noToken], readNetrc)).rejects.toThrow(/HTTP error 401/);
    // Without any token Nix cannot even read nix-cache-info.
    await expect(nix.copyToHttp(store, `${server.url}/upload`, [paths.noToken])).rejects.toThrow(/does not appear to be a binary cache/);
    expect(await stored(paths.noToken)).toBeNull();
  }, 60_000);
});

/** An uncompressed "NAR" of random bytes named like Nix names uploads, and a narinfo for a store path using it. */
function makePath(hash?: string): { nar: Buffer; narPath: string; info: NarInfo } {
  return fakePath('upload-check', 2000, hash);
}

/** What an authenticated upload may not do: point at a NAR we do not have, or overwrite an upstream's narinfo. */
describe('narinfo uploads that conflict with what is stored', () => {
  const upstreamKey = generateKeyPair('upstream.test-1');
  let upstream: FakeUpstream;
  let server: RunningApp;
  const auth = bearer('write-token');

  beforeAll(async () => {
    upstream = await FakeUpstream.start();
    server = await startApp({
      'cache-allow-put-verb': 'true',
      'cache-put-token': 'write-token',
      'cache-upstream-url': [upstream.url],
      'cache-upstream-public-key': [formatPublicKey(upstreamKey.publicKey)],
    });
  });

  afterAll(async () => {
    await server?.close();
    await upstream?.stop();
  });

  const put = async (path: string, body: string | Buffer) => {
    const res = await fetch(`${server.url}${path}`, { method: 'PUT', headers: auth, body });
    return { status: res.status, text: await res.text() };
  };
  const narInfos = () => server.app.get(NarInfoRepository);

  it('refuses with 409 a narinfo whose NAR was not uploaded, and stores nothing', async () => {
    const path = makePath();
    const hash = hashOf(path.info.storePath);
    const res = await put(`/upload/${hash}.narinfo`, serializeNarInfo(path.info));
    expect(res.status).toBe(409);
    expect(res.text).toMatch(/nar\/[0-9a-z]{52}\.nar is not stored: upload the NAR before its narinfo/);
    expect(await narInfos().findByHash(hash)).toBeNull();

    // The same narinfo once its NAR is there: accepted.
    expect((await put(path.narPath, path.nar)).status).toBe(204);
    expect((await put(`/upload/${hash}.narinfo`, serializeNarInfo(path.info))).status).toBe(204);
    expect(await narInfos().findByHash(hash)).not.toBeNull();
  });

  it('refuses with 409 to replace a narinfo fetched from upstream with other contents, and keeps it', async () => {
    const original = makePath();
    const hash = hashOf(original.info.storePath);
    const signed = serializeNarInfo(signedOnlyBy(original.info, upstreamKey.secretKey));
    upstream.serve(`/${hash}.narinfo`, signed);
    upstream.serve(original.narPath, original.nar);
    const fetched = await fetch(`${server.url}/${hash}.narinfo`);
    expect(fetched.status).toBe(200);
    const before = await fetched.text();
    expect((await narInfos().findByHash(hash))?.upstreamUrl).toBe(upstream.url);

    // Another NAR for the same store path, uploaded first as Nix would.
    const forged = makePath(hash.slice(0, 32));
    expect((await put(forged.narPath, forged.nar)).status).toBe(204);
    const res = await put(`/${hash}.narinfo`, serializeNarInfo({ ...forged.info, storePath: original.info.storePath }));
    expect(res.status).toBe(409);
    expect(res.text).toMatch(/upstream narinfo with different contents/);

    const row = await narInfos().findByHash(hash);
    expect(row).toMatchObject({ upstreamUrl: upstream.url, narHash: original.info.narHash, url: original.info.url });
    expect(await (await fetch(`${server.url}/${hash}.narinfo`)).text()).toBe(before);
  });

  it('accepts (204) an upload identical to the upstream narinfo, leaving it as it was', async () => {
    const original = makePath();
    const hash = hashOf(original.info.storePath);
    upstream.serve(`/${hash}.narinfo`, serializeNarInfo(signedOnlyBy(original.info, upstreamKey.secretKey)));
    upstream.serve(original.narPath, original.nar);
    expect((await fetch(`${server.url}/${hash}.narinfo`)).status).toBe(200);
    const before = await narInfos().findByHash(hash);

    expect((await put(original.narPath, original.nar)).status).toBe(204);
    const res = await put(`/${hash}.narinfo`, serializeNarInfo(original.info));
    expect(res.status).toBe(204);
    expect(await narInfos().findByHash(hash)).toEqual(before);
  });
});
