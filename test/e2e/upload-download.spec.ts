import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { NixWorkspace } from 'test/support/nix';
import { RunningApp, startApp } from 'test/support/app';

/**
 * The real Nix client against the real server: `nix copy --to .../upload` uploads a closure, and a
 * fresh client that trusts only our /pubkey downloads it again.
 */
describe('a real Nix client uploading and downloading through ncps', () => {
  let nix: NixWorkspace;
  let server: RunningApp;
  let store: string;
  let paths: { leaf: string; other: string; top: string };

  beforeAll(async () => {
    nix = await NixWorkspace.create();
    server = await startApp({ 'cache-allow-put-verb': 'true' });
    store = join(nix.dir, 'source-store');
    await mkdir(store, { recursive: true });
    const [leaf, other] = await nix.addFiles(store, { 'leaf.txt': 'leaf\n', 'other.txt': 'x'.repeat(70_000) });
    const top = await nix.buildWithReferences(store, 'top', [leaf, other]);
    paths = { leaf, other, top };
  }, 120_000);

  afterAll(async () => {
    await server?.close();
    await nix?.dispose();
  });

  it('accepts nix copy --to http://host/upload, then serves the closure to a client trusting only our key', async () => {
    await nix.copyToHttp(store, `${server.url}/upload`, [paths.top]);

    const pubkey = await (await fetch(`${server.url}/pubkey`)).text();
    expect(pubkey).toMatch(/^ncps-test-1:[A-Za-z0-9+/]{43}=$/);

    const client = await nix.copyFromHttp(server.url, pubkey, [paths.top]);
    expect(await nix.readStoreFile(client, paths.leaf)).toBe('leaf\n');
    expect(await nix.readStoreFile(client, paths.other)).toBe('x'.repeat(70_000));
    expect(await nix.readStoreFile(client, paths.top)).toContain(paths.leaf);
  }, 120_000);

  it('serves narinfos with exactly one signature of ours', async () => {
    const hash = paths.top.slice('/nix/store/'.length, '/nix/store/'.length + 32);
    const text = await (await fetch(`${server.url}/${hash}.narinfo`)).text();
    const ours = text.split('\n').filter((l) => l.startsWith('Sig: ncps-test-1:'));
    expect(ours).toHaveLength(1);
    expect(text).toMatch(/^URL: nar\/[0-9a-z]{52}\.nar\.xz$/m);
  });

  it('makes a client that trusts another key refuse the paths', async () => {
    const { publicKey: stranger } = await nix.generateKey('stranger-1');
    await expect(nix.copyFromHttp(server.url, stranger, [paths.top])).rejects.toThrow(/lacks a valid signature/);
  }, 60_000);

  it('keeps its public key across a restart on the same database', async () => {
    const before = await (await fetch(`${server.url}/pubkey`)).text();
    const again = await startApp({ 'cache-data-dir': server.dataDir });
    try {
      expect(await (await fetch(`${again.url}/pubkey`)).text()).toBe(before);
    } finally {
      await again.app.close();
    }
  });
});
