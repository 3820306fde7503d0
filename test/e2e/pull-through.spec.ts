import { randomBytes } from 'node:crypto';
import { IncomingHttpHeaders, get as httpGet } from 'node:http';
import { decompress } from 'zstd-napi';
import { mkdir, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { NixWorkspace } from 'test/support/nix';
import { RunningApp, startApp } from 'test/support/app';
import { FakeUpstream } from 'test/support/fake-upstream';

/** A GET without transparent decoding, to see the bytes as sent. */
function rawGet(url: string, headers: Record<string, string>): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    httpGet(url, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    }).on('error', reject);
  });
}

const hashOf = (storePath: string) => storePath.slice('/nix/store/'.length, '/nix/store/'.length + 32);

/**
 * ncps as a pull-through cache in front of local upstreams made by the real Nix (`nix copy --to
 * file://`), fetched through by the real Nix client.
 */
describe('pull-through proxying with a real Nix client', () => {
  let nix: NixWorkspace;
  let store: string;
  let upstreamKey: { secretPath: string; publicKey: string };
  let paths: { leaf: string; big: string; top: string };
  const caches: Record<string, string> = {};

  beforeAll(async () => {
    nix = await NixWorkspace.create();
    store = join(nix.dir, 'upstream-store');
    await mkdir(store, { recursive: true });
    const random = randomBytes(400_000); // incompressible, so the NAR files stay ~400 KB
    const [leaf, big] = await nix.addFiles(store, { 'leaf.txt': 'leaf\n', 'big.bin': random });
    const top = await nix.buildWithReferences(store, 'top', [leaf, big]);
    paths = { leaf, big, top };
    upstreamKey = await nix.generateKey('upstream.test-1');
    await nix.sign(store, upstreamKey.secretPath, [top]);
    for (const compression of ['xz', 'zstd', 'none']) {
      caches[compression] = join(nix.dir, `cache-${compression}`);
      await nix.copyToFileCache(store, caches[compression], compression, [top]);
    }
  }, 180_000);

  afterAll(() => nix?.dispose());

  async function proxy(upstream: FakeUpstream, flags: Record<string, unknown> = {}): Promise<RunningApp> {
    return startApp({
      'cache-upstream-url': [upstream.url],
      'cache-upstream-public-key': [upstreamKey.publicKey],
      ...flags,
    });
  }

  describe.each(['xz', 'zstd', 'none'])('an upstream cache compressed with %s', (compression) => {
    let upstream: FakeUpstream;
    let server: RunningApp;

    beforeAll(async () => {
      upstream = await FakeUpstream.start({ dir: caches[compression] });
      server = await proxy(upstream);
    });
    afterAll(async () => {
      await server?.close();
      await upstream?.stop();
    });

    it('serves the whole closure to a client trusting only our key, and keeps serving it with the upstream gone', async () => {
      const pubkey = await (await fetch(`${server.url}/pubkey`)).text();
      const first = await nix.copyFromHttp(server.url, pubkey, [paths.top]);
      expect(await nix.readStoreFile(first, paths.leaf)).toBe('leaf\n');
      expect(await readFile(join(first, paths.big))).toEqual(await readFile(join(store, paths.big)));

      await upstream.stop();
      const second = await nix.copyFromHttp(server.url, pubkey, [paths.top]);
      expect(await nix.readStoreFile(second, paths.top)).toContain(paths.leaf);
      await upstream.restart();
    }, 120_000);

    it('passes the compression through as the upstream stored it', async () => {
      const text = await (await fetch(`${server.url}/${hashOf(paths.big)}.narinfo`)).text();
      expect(text).toMatch(new RegExp(`^Compression: ${compression}$`, 'm'));
      const upstreamText = await readFile(join(caches[compression], `${hashOf(paths.big)}.narinfo`), 'utf8');
      const fileHash = /^FileHash: (.*)$/m.exec(upstreamText)?.[1];
      expect(text).toContain(`FileHash: ${fileHash}`);
    });

    if (compression === 'none') {
      it('encodes the uncompressed NAR with zstd for clients that accept it, but not ranges', async () => {
        const served = await (await fetch(`${server.url}/${hashOf(paths.big)}.narinfo`)).text();
        const ourUrl = /^URL: (.*)$/m.exec(served)![1];
        const identity = await rawGet(`${server.url}/${ourUrl}`, {});
        const encoded = await rawGet(`${server.url}/${ourUrl}`, { 'accept-encoding': 'gzip, zstd' });
        expect(encoded.headers['content-encoding']).toBe('zstd');
        expect(decompress(encoded.body).equals(identity.body)).toBe(true);
        const ranged = await rawGet(`${server.url}/${ourUrl}`, { 'accept-encoding': 'zstd', range: 'bytes=10-19' });
        expect(ranged.status).toBe(206);
        expect(ranged.headers['content-encoding']).toBeUndefined();
        expect(ranged.body.equals(identity.body.subarray(10, 20))).toBe(true);
      });
    }

    it('makes a client trusting another key refuse the paths', async () => {
      const { publicKey } = await nix.generateKey(`stranger-${compression}-1`);
      await expect(nix.copyFromHttp(server.url, publicKey, [paths.top])).rejects.toThrow(/lacks a valid signature/);
    }, 60_000);
  });

  describe('downloads', () => {
    let upstream: FakeUpstream;
    let server: RunningApp;
    let bigNarinfo: string;
    let narPath: string;

    beforeEach(async () => {
      upstream = await FakeUpstream.start({ dir: caches.xz });
      server = await proxy(upstream);
      bigNarinfo = await readFile(join(caches.xz, `${hashOf(paths.big)}.narinfo`), 'utf8');
      narPath = `/${/^URL: (.*)$/m.exec(bigNarinfo)![1]}`;
    });
    afterEach(async () => {
      await server?.close();
      await upstream?.stop();
    });

    async function storedNarFiles(): Promise<number> {
      const rows = await server.app.get(DataSource).query('SELECT COUNT(*) AS n FROM nar_files');
      return Number(rows[0].n);
    }

    async function tempFiles(): Promise<string[]> {
      return (await readdir(server.config.cache.tempPath)).filter((f) => f.startsWith('ncps-dl-'));
    }

    it('20 concurrent clients of one uncached NAR cause one upstream GET and all get the right bytes', async () => {
      upstream.route(narPath, { throttle: { chunkSize: 16_384, intervalMs: 20 } });
      const served = await (await fetch(`${server.url}/${hashOf(paths.big)}.narinfo`)).text();
      const ourUrl = /^URL: (.*)$/m.exec(served)![1];
      const expected = await readFile(join(caches.xz, narPath));
      const bodies = await Promise.all(
        Array.from({ length: 20 }, async () => Buffer.from(await (await fetch(`${server.url}/${ourUrl}`)).arrayBuffer())),
      );
      for (const body of bodies) expect(body.equals(expected)).toBe(true);
      expect(upstream.count(narPath)).toBe(1);
    }, 60_000);

    it.each([
      ['a tampered NAR', { tamper: true }],
      ['a body cut midway', { cutAfterBytes: 5000 }],
    ])('%s is not stored, the client sees a failed transfer, and no temp file is left', async (_, behaviour) => {
      upstream.route(narPath, behaviour);
      const served = await (await fetch(`${server.url}/${hashOf(paths.big)}.narinfo`)).text();
      const ourUrl = /^URL: (.*)$/m.exec(served)![1];
      // Either the transfer breaks (the download failed while streaming) or, when it had already
      // failed, the answer is an error status: never a 200 with a complete-looking body.
      const outcome = await fetch(`${server.url}/${ourUrl}`)
        .then(async (r) => (await r.arrayBuffer(), r.status))
        .catch(() => 'aborted');
      expect(outcome === 'aborted' || outcome === 502).toBe(true);
      expect(await storedNarFiles()).toBe(0);
      expect((await fetch(`${server.url}/${ourUrl}`, { method: 'HEAD' })).status).not.toBe(500);
      for (let i = 0; i < 50 && (await tempFiles()).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect(await tempFiles()).toEqual([]);
    });

    it('refuses a narinfo signed by an untrusted key', async () => {
      const other = await nix.generateKey('other-1');
      const strict = await startApp({ 'cache-upstream-url': [upstream.url], 'cache-upstream-public-key': [other.publicKey] });
      try {
        expect((await fetch(`${strict.url}/${hashOf(paths.big)}.narinfo`)).status).toBe(404);
      } finally {
        await strict.close();
      }
    });

    it('accepts base16 and SRI hashes and opaque NAR URLs with a query string', async () => {
      const { stdout: narHashHex } = await nix.nix('nix', ['hash', 'to-base16', /^NarHash: (.*)$/m.exec(bigNarinfo)![1]]);
      const { stdout: fileHashSri } = await nix.nix('nix', ['hash', 'to-sri', /^FileHash: (.*)$/m.exec(bigNarinfo)![1]]);
      const rewritten = bigNarinfo
        .replace(/^URL: .*$/m, 'URL: nar/0b5a7c3e-uuid.nar.xz?token=abc')
        .replace(/^NarHash: .*$/m, `NarHash: sha256:${narHashHex.trim()}`)
        .replace(/^FileHash: .*$/m, `FileHash: ${fileHashSri.trim()}`);
      upstream.serve(`/${hashOf(paths.big)}.narinfo`, rewritten);
      upstream.serve('/nar/0b5a7c3e-uuid.nar.xz', await readFile(join(caches.xz, narPath)));

      const served = await (await fetch(`${server.url}/${hashOf(paths.big)}.narinfo`)).text();
      expect(served).toMatch(/^NarHash: sha256:[0-9a-z]{52}$/m);
      expect(served).toMatch(/^FileHash: sha256:[0-9a-z]{52}$/m);
      const ourUrl = /^URL: (.*)$/m.exec(served)![1];
      expect(ourUrl).toMatch(/^nar\/[0-9a-z]{52}\.nar\.xz$/);
      const body = Buffer.from(await (await fetch(`${server.url}/${ourUrl}`)).arrayBuffer());
      expect(body.equals(await readFile(join(caches.xz, narPath)))).toBe(true);
      expect(upstream.requests.some((r) => r.url === '/nar/0b5a7c3e-uuid.nar.xz?token=abc')).toBe(true);
    });

    it('answers 404 quickly when no upstream has the narinfo', async () => {
      const res = await fetch(`${server.url}/${'0'.repeat(32)}.narinfo`);
      expect(res.status).toBe(404);
    });

    it('serves Range requests on stored NARs', async () => {
      const served = await (await fetch(`${server.url}/${hashOf(paths.big)}.narinfo`)).text();
      const ourUrl = /^URL: (.*)$/m.exec(served)![1];
      const whole = Buffer.from(await (await fetch(`${server.url}/${ourUrl}`)).arrayBuffer());
      const res = await fetch(`${server.url}/${ourUrl}`, { headers: { range: 'bytes=100-199' } });
      expect(res.status).toBe(206);
      expect(res.headers.get('content-range')).toBe(`bytes 100-199/${whole.length}`);
      expect(Buffer.from(await res.arrayBuffer()).equals(whole.subarray(100, 200))).toBe(true);
      const head = await fetch(`${server.url}/${ourUrl}`, { method: 'HEAD' });
      expect(head.headers.get('content-length')).toBe(String(whole.length));
      expect(head.headers.get('accept-ranges')).toBe('bytes');
    });
  });
});
