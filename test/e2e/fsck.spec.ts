import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli } from 'src/cli/cli';
import { StoragePort } from 'src/storage';
import { pathOf } from 'src/storage/providers/local.layout';
import { RunningApp, startApp } from 'test/support/app';
import { FakeUpstream } from 'test/support/fake-upstream';
import { NixWorkspace } from 'test/support/nix';

const hashOf = (storePath: string) => storePath.slice('/nix/store/'.length, '/nix/store/'.length + 32);

/**
 * Bit rot in a stored NAR, as a Nix user meets it: ncps serves the rotten bytes and the client fails
 * with a hash mismatch. `ncps fsck --verify-content` finds it, `--repair` removes it while the server
 * runs, and the next client gets the path again, fetched anew from the upstream.
 */
describe('ncps fsck --verify-content with a real Nix client', () => {
  let nix: NixWorkspace;
  let path: string;
  let upstreamKey: { secretPath: string; publicKey: string };
  let upstream: FakeUpstream;
  let server: RunningApp;
  let cacheDir: string;

  beforeAll(async () => {
    nix = await NixWorkspace.create();
    const store = join(nix.dir, 'upstream-store');
    await mkdir(store, { recursive: true });
    [path] = await nix.addFiles(store, { 'rot.bin': randomBytes(100_000) });
    upstreamKey = await nix.generateKey('upstream.test-1');
    await nix.sign(store, upstreamKey.secretPath, [path]);
    cacheDir = join(nix.dir, 'cache');
    // Uncompressed, so the flipped byte reaches Nix's NarHash check (xz would stop at its own CRC first).
    await nix.copyToFileCache(store, cacheDir, 'none', [path]);
    upstream = await FakeUpstream.start({ dir: cacheDir });
    server = await startApp({
      'cache-upstream-url': [upstream.url],
      'cache-upstream-public-key': [upstreamKey.publicKey],
      'prometheus-enabled': 'true',
    });
  }, 120_000);

  afterAll(async () => {
    await server?.close();
    await upstream?.stop();
    await nix?.dispose();
  });

  async function fsck(...args: string[]): Promise<{ code: number; stdout: string }> {
    let stdout = '';
    const out = jest.spyOn(process.stdout, 'write').mockImplementation((chunk) => ((stdout += String(chunk)), true));
    try {
      const code = await runCli(['fsck', '--cache-data-dir', server.dataDir, '--log-level', 'warn', ...args], {});
      return { code, stdout };
    } finally {
      out.mockRestore();
    }
  }

  it('finds a flipped byte, removes the NAR, and the client then gets the path from the upstream again', async () => {
    const pubkey = await (await fetch(`${server.url}/pubkey`)).text();
    await nix.copyFromHttp(server.url, pubkey, [path]);
    const served = await (await fetch(`${server.url}/${hashOf(path)}.narinfo`)).text();
    const key = /^URL: (.*)$/m.exec(served)![1];
    const upstreamNar = `/${/^URL: (.*)$/m.exec(await readFile(join(cacheDir, `${hashOf(path)}.narinfo`), 'utf8'))![1]}`;
    const storage = server.app.get(StoragePort);
    // The client may finish reading before the verified download is committed to storage.
    for (let i = 0; i < 200 && !(await storage.head(key)); i++) await new Promise((r) => setTimeout(r, 25));
    expect(server.config.storage.kind).toBe('local');
    const file = join((server.config.storage as { path: string }).path, pathOf(key));
    const bytes = await readFile(file);
    bytes[bytes.length >> 1] ^= 0x40;
    await writeFile(file, bytes);
    await expect(nix.copyFromHttp(server.url, pubkey, [path])).rejects.toThrow(/hash mismatch/);

    expect(await fsck()).toMatchObject({ code: 0 }); // same size: only the content check sees it
    const check = await fsck('--verify-content');
    expect(check.code).toBe(1);
    expect(check.stdout).toMatch(new RegExp(`^corrupt-object ${key}: its bytes hash to sha256:[0-9a-z]{52}, not sha256:`, 'm'));

    const repair = await fsck('--verify-content', '--repair');
    expect(repair.code).toBe(0);
    expect(repair.stdout).toContain(`corrupt-object ${key}`);
    expect(repair.stdout).toContain('repaired: deleted its nar_files row and the object');
    expect(await storage.head(key)).toBeNull();

    const fetchedBefore = upstream.count(upstreamNar);
    const client = await nix.copyFromHttp(server.url, pubkey, [path]);
    expect(await readFile(join(client, path))).toEqual(await readFile(join(nix.dir, 'upstream-store', path)));
    expect(upstream.count(upstreamNar)).toBe(fetchedBefore + 1);
  }, 120_000);

  it('fetches a NAR deleted by hand again, counts it as a missing object, and fsck is clean afterwards', async () => {
    const pubkey = await (await fetch(`${server.url}/pubkey`)).text();
    const served = await (await fetch(`${server.url}/${hashOf(path)}.narinfo`)).text();
    const key = /^URL: (.*)$/m.exec(served)![1];
    const storage = server.app.get(StoragePort);
    for (let i = 0; i < 200 && !(await storage.head(key)); i++) await new Promise((r) => setTimeout(r, 25));
    await rm(join((server.config.storage as { path: string }).path, pathOf(key)));
    const missing = async () =>
      Number(/^ncps_nar_missing_objects_total (\d+)$/m.exec(await (await fetch(`${server.url}/metrics`)).text())?.[1]);
    const before = await missing();

    const check = await fsck();
    expect(check.code).toBe(1);
    expect(check.stdout).toMatch(new RegExp(`^missing-object ${key}: `, 'm'));

    await nix.copyFromHttp(server.url, pubkey, [path]);
    expect(await missing()).toBe(before + 1);
    for (let i = 0; i < 200 && !(await storage.head(key)); i++) await new Promise((r) => setTimeout(r, 25));
    expect(await fsck('--verify-content')).toMatchObject({ code: 0 });
  }, 120_000);
});
