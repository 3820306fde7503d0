import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, stat } from 'node:fs/promises';
import { ServerResponse } from 'node:http';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { NarInfo, parseNarInfo, parseSecretKey, serializeNarInfo, signedOnlyBy } from 'src/nix';
import { StoragePort } from 'src/storage';
import { RunningApp, startApp } from 'test/support/app';
import { FakeUpstream } from 'test/support/fake-upstream';
import { NixWorkspace } from 'test/support/nix';
import { sleep } from 'test/support/wait';

const hashOf = (storePath: string) => storePath.slice('/nix/store/'.length, '/nix/store/'.length + 32);
const urlOf = (narinfo: string) => /^URL: (.*)$/m.exec(narinfo)![1];
/**
 * End to end: a compressed NAR whose narinfo has no FileHash is checked against
 * NarHash/NarSize while it downloads, never named by its NarHash, and a download is cut the moment
 * it passes its size. The real app, a fake upstream serving caches written by the real `nix copy`,
 * the real Nix client.
 */
describe('every stored NAR is verified; sizes are enforced while bytes arrive', () => {
  let nix: NixWorkspace;
  let store: string;
  let upstreamKey: { secretPath: string; publicKey: string };
  let paths: { a: string; b: string };
  const caches: Record<string, string> = {};

  beforeAll(async () => {
    nix = await NixWorkspace.create();
    store = join(nix.dir, 'upstream-store');
    await mkdir(store, { recursive: true });
    const [a, b] = await nix.addFiles(store, { 'a.bin': randomBytes(300_000), 'b.bin': randomBytes(300_000) });
    paths = { a, b };
    upstreamKey = await nix.generateKey('upstream.test-1');
    await nix.sign(store, upstreamKey.secretPath, [a, b]);
    for (const compression of ['xz', 'bzip2']) {
      caches[compression] = join(nix.dir, `cache-${compression}`);
      await nix.copyToFileCache(store, caches[compression], compression, [a, b]);
    }
  }, 180_000);

  afterAll(() => nix?.dispose());

  let upstream: FakeUpstream;
  let server: RunningApp;

  async function start(compression: string, flags: Record<string, unknown> = {}): Promise<void> {
    upstream = await FakeUpstream.start({ dir: caches[compression] });
    server = await startApp({
      'cache-upstream-url': [upstream.url],
      'cache-upstream-public-key': [upstreamKey.publicKey],
      ...flags,
    });
  }

  afterEach(async () => {
    await server?.close();
    await upstream?.stop();
  });

  const upstreamNarInfo = async (compression: string, path: string) =>
    parseNarInfo(await readFile(join(caches[compression], `${hashOf(path)}.narinfo`), 'utf8'));

  /** Serves `info` (FileHash and FileSize dropped unless kept) as `path`'s narinfo upstream. */
  function publish(path: string, info: NarInfo): void {
    upstream.serve(`/${hashOf(path)}.narinfo`, serializeNarInfo(info));
  }

  const withoutFileHash = ({ fileHash: _h, fileSize: _s, ...info }: NarInfo): NarInfo => info;

  async function resign(info: NarInfo): Promise<NarInfo> {
    return signedOnlyBy(info, parseSecretKey(await readFile(upstreamKey.secretPath, 'utf8')));
  }

  async function ourNarInfo(path: string): Promise<string> {
    const res = await fetch(`${server.url}/${hashOf(path)}.narinfo`);
    expect(res.status).toBe(200);
    return res.text();
  }

  /** The NAR through ncps: its bytes, or 'failed' when the transfer broke or answered an error. */
  async function getNar(url: string): Promise<Buffer | 'failed'> {
    try {
      const res = await fetch(`${server.url}/${url}`);
      const body = Buffer.from(await res.arrayBuffer());
      return res.status === 200 ? body : 'failed';
    } catch {
      return 'failed';
    }
  }

  async function storedNarFiles(): Promise<number> {
    const rows = await server.app.get(DataSource).query('SELECT COUNT(*) AS n FROM nar_files');
    return Number(rows[0].n);
  }

  async function tempFiles(): Promise<string[]> {
    return (await readdir(server.config.cache.tempPath).catch(() => [] as string[])).filter((f) => f.startsWith('ncps-dl-'));
  }

  async function noTempFilesSoon(): Promise<string[]> {
    for (let i = 0; i < 100 && (await tempFiles()).length > 0; i++) await sleep(20);
    return tempFiles();
  }

  describe.each(['xz', 'bzip2'])('a %s NAR whose narinfo has no FileHash', (compression) => {
    beforeEach(() => start(compression));

    it('is checked against NarHash, stored under a name that is not its NarHash, and served to Nix', async () => {
      const info = await upstreamNarInfo(compression, paths.a);
      publish(paths.a, withoutFileHash(info));
      const served = await ourNarInfo(paths.a);
      const url = urlOf(served);
      expect(url).toMatch(/^nar\/[0-9a-z]{52}\.nar\.(xz|bz2)$/);
      expect(url).not.toContain(info.narHash.slice('sha256:'.length));

      const body = await getNar(url);
      expect(body).toEqual(await readFile(join(caches[compression], info.url)));
      // The last byte goes out once the bytes are verified; storing them may finish just after.
      const stored = async () => server.app.get(StoragePort).head(url);
      for (let i = 0; i < 100 && !(await stored()); i++) await sleep(20);
      expect(await stored()).not.toBeNull();

      const pubkey = await (await fetch(`${server.url}/pubkey`)).text();
      const client = await nix.copyFromHttp(server.url, pubkey, [paths.a]);
      expect(await readFile(join(client, paths.a))).toEqual(await readFile(join(store, paths.a)));
    }, 60_000);

    it('is not stored when its bytes do not decompress to NarHash: the client gets an error, no object, no temp file', async () => {
      // A genuine, signed narinfo of path a, but its URL leads to b's (valid, compressed) NAR file.
      const a = await upstreamNarInfo(compression, paths.a);
      const b = await upstreamNarInfo(compression, paths.b);
      publish(paths.a, { ...withoutFileHash(a), url: b.url });
      const url = urlOf(await ourNarInfo(paths.a));

      expect(await getNar(url)).toBe('failed');
      expect(await server.app.get(StoragePort).head(url)).toBeNull();
      expect(await storedNarFiles()).toBe(0);
      expect(await noTempFilesSoon()).toEqual([]);
      // The next client is refused too (4xx/5xx, never the wrong bytes), and Nix does not get the path.
      expect(await getNar(url)).toBe('failed');
      const pubkey = await (await fetch(`${server.url}/pubkey`)).text();
      await expect(nix.copyFromHttp(server.url, pubkey, [paths.a])).rejects.toThrow();
      expect(await storedNarFiles()).toBe(0);
    }, 60_000);
  });

  describe('a colliding narinfo (another store path claiming the same NarHash, other bytes)', () => {
    beforeEach(() => start('xz'));

    it('cannot replace the NAR of the path that owns that NarHash, in either order', async () => {
      const a = withoutFileHash(await upstreamNarInfo('xz', paths.a));
      const b = await upstreamNarInfo('xz', paths.b);
      // Path b, signed by the trusted key, but claiming a's NarHash and NarSize over b's own bytes.
      const forged = await resign({ ...withoutFileHash(b), narHash: a.narHash, narSize: a.narSize });
      publish(paths.a, a);
      publish(paths.b, forged);
      const aBytes = await readFile(join(caches.xz, a.url));

      // The forged one first: it may not take a name that a's narinfo will use.
      const forgedUrl = urlOf(await ourNarInfo(paths.b));
      expect(await getNar(forgedUrl)).toBe('failed');
      const aUrl = urlOf(await ourNarInfo(paths.a));
      expect(aUrl).not.toBe(forgedUrl);
      expect(await getNar(aUrl)).toEqual(aBytes);

      // And after a is stored, the forged one still gets nothing and a's bytes stay a's.
      expect(await getNar(forgedUrl)).toBe('failed');
      expect(await getNar(aUrl)).toEqual(aBytes);
      const pubkey = await (await fetch(`${server.url}/pubkey`)).text();
      const client = await nix.copyFromHttp(server.url, pubkey, [paths.a]);
      expect(await readFile(join(client, paths.a))).toEqual(await readFile(join(store, paths.a)));
      await expect(nix.copyFromHttp(server.url, pubkey, [paths.b])).rejects.toThrow();
      expect(await storedNarFiles()).toBe(1);
    }, 90_000);

    it('cannot take its name by claiming a FileHash equal to that NarHash', async () => {
      // Under the old naming (NarHash when FileHash was missing) these two shared nar/<NarHash>.nar.xz.
      const a = withoutFileHash(await upstreamNarInfo('xz', paths.a));
      const b = await upstreamNarInfo('xz', paths.b);
      publish(paths.a, a);
      publish(paths.b, { ...b, fileHash: a.narHash });
      const aUrl = urlOf(await ourNarInfo(paths.a));
      const bUrl = urlOf(await ourNarInfo(paths.b));
      expect(bUrl).not.toBe(aUrl);
      expect(await getNar(bUrl)).toBe('failed'); // b's bytes do not hash to that FileHash
      expect(await getNar(aUrl)).toEqual(await readFile(join(caches.xz, a.url)));
    }, 60_000);
  });

  describe('an upstream that streams without end', () => {
    /** A NAR route that answers 200 without Content-Length and sends bytes until the connection closes. */
    function endless(path: string): { sent: () => number; closed: Promise<void> } {
      let sent = 0;
      let markClosed!: () => void;
      const closed = new Promise<void>((resolve) => (markClosed = resolve));
      upstream.route(path, (_req, res: ServerResponse) => {
        res.writeHead(200, { 'content-type': 'application/x-nix-nar' });
        res.on('close', markClosed);
        const chunk = randomBytes(64 * 1024);
        const pump = () => {
          while (!res.destroyed && sent < 1 << 30) {
            sent += chunk.length;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
        };
        pump();
      });
      return { sent: () => sent, closed };
    }

    /**
     * Serves an endless NAR at `path` for paths.a and has a client fetch it through us: the fetch must
     * fail and the upstream connection close. Returns the largest temp file seen and the bytes sent.
     */
    async function fetchEndless(path: string): Promise<{ largestTemp: number; sent: number }> {
      const stream = endless(path);
      const watch = watchTempDir();
      const url = urlOf(await ourNarInfo(paths.a));
      try {
        expect(await getNar(url)).toBe('failed');
        await Promise.race([stream.closed, sleep(10_000).then(() => Promise.reject(new Error('upstream connection not closed')))]);
      } finally {
        watch.stop();
      }
      return { largestTemp: watch.largest(), sent: stream.sent() };
    }

    /** Polls the temp dir while the download runs: the largest temp file seen. */
    function watchTempDir(): { largest: () => number; stop: () => void } {
      let largest = 0;
      let running = true;
      void (async () => {
        while (running) {
          for (const name of await tempFiles()) {
            const size = await stat(join(server.config.cache.tempPath, name)).then(
              (s) => s.size,
              () => 0,
            );
            largest = Math.max(largest, size);
          }
          await sleep(5);
        }
      })();
      return { largest: () => largest, stop: () => void (running = false) };
    }

    it('is cut at FileSize + 1 byte: nothing stored, the temp dir stays bounded and empty afterwards', async () => {
      await start('xz');
      const info = await upstreamNarInfo('xz', paths.a);
      publish(paths.a, info); // FileHash and FileSize as nix wrote them
      const { largestTemp, sent } = await fetchEndless(`/${info.url}`);
      expect(largestTemp).toBeLessThanOrEqual(info.fileSize!);
      // What the upstream managed to send: the size plus what socket buffers held, not a gigabyte.
      expect(sent).toBeLessThan(info.fileSize! + 16 * 1024 * 1024);
      expect(await storedNarFiles()).toBe(0);
      expect(await noTempFilesSoon()).toEqual([]);
    }, 60_000);

    it('without any size known, is cut at --cache-max-nar-size', async () => {
      await start('xz', { 'cache-max-nar-size': '2M' });
      const { fileSize: _s, ...info } = await upstreamNarInfo('xz', paths.a);
      publish(paths.a, info); // FileHash kept, FileSize gone
      const { largestTemp, sent } = await fetchEndless(`/${info.url}`);
      expect(largestTemp).toBeLessThanOrEqual(2 * 1024 * 1024);
      expect(sent).toBeLessThan(2 * 1024 * 1024 + 16 * 1024 * 1024);
      expect(await storedNarFiles()).toBe(0);
      expect(await noTempFilesSoon()).toEqual([]);
    }, 60_000);
  });
});
