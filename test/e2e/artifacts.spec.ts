import { execFileSync } from 'node:child_process';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { IncomingHttpHeaders, request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import { compress as zstdCompress } from 'zstd-napi';
import { NixWorkspace } from 'test/support/nix';
import { RunningApp, startApp } from 'test/support/app';
import { FakeUpstream } from 'test/support/fake-upstream';

/** A request without transparent decoding, to see the bytes and headers as sent. */
function send(
  url: string,
  method: string,
  headers: Record<string, string> = {},
  body?: string | Buffer,
): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

const hashOf = (storePath: string) => storePath.slice('/nix/store/'.length, '/nix/store/'.length + 32);
const baseName = (storePath: string) => storePath.slice('/nix/store/'.length);
const SANDBOX = ['--option', 'sandbox-paths', '/bin /lib /lib64 /usr'];

/**
 * Listings, build logs, realisations, build traces and debuginfo through ncps, from an upstream made
 * by the real Nix 2.8 (`nix copy --to file://...?write-nar-listing=true&index-debug-info=true`,
 * `nix store copy-log`, a content-addressed derivation copied with ca-derivations), read by the real
 * Nix client where it reads them (`nix log`, `nix store ls`), by plain GET/HEAD otherwise.
 */
describe('artifacts: .ls, log/, realisations/, build-trace-v2/, debuginfo/', () => {
  let nix: NixWorkspace;
  let store: string;
  let cacheDir: string;
  let key: { secretPath: string; publicKey: string };
  let out: string; // a built path with a log and a directory tree
  let drv: string;
  let realisationPath: string; // realisations/sha256:...!out.doi, as Nix wrote it
  let debugInfoPath: string; // debuginfo/<build id>.debug, as Nix wrote it
  let caFile: string; // the content-addressed derivation's expression

  const caConfig = 'extra-experimental-features = ca-derivations\n';

  beforeAll(async () => {
    nix = await NixWorkspace.create();
    store = join(nix.dir, 'store');
    cacheDir = join(nix.dir, 'cache');
    await mkdir(store, { recursive: true });
    const write = async (name: string, script: string, extra = '') => {
      const file = join(nix.dir, `${name}.nix`);
      await writeFile(
        file,
        `derivation { name = "${name}"; system = builtins.currentSystem; builder = "/bin/sh"; ${extra}
  args = [ "-c" "export PATH=/bin:/usr/bin; ${script}" ]; }\n`,
      );
      return file;
    };
    const logged = await write(
      'logged',
      'echo building-logged-hello; echo second line >&2; mkdir -p $out/sub; echo hi > $out/file; echo x > $out/sub/y',
    );
    const dbg = await write(
      'dbg',
      'mkdir -p $out/lib/debug/.build-id/ab; echo fake > $out/lib/debug/.build-id/ab/cdef0123456789abcdef0123456789abcdef01.debug',
    );
    const ca = (caFile = await write(
      'ca',
      'echo ca-build; echo ca > $out',
      '__contentAddressed = true; outputHashMode = "recursive"; outputHashAlgo = "sha256";',
    ));
    out = (await nix.nix('nix-build', ['--store', store, logged, '--no-out-link', ...SANDBOX])).stdout.trim();
    drv = (await nix.nix('nix-store', ['--store', store, '-q', '--deriver', out])).stdout.trim();
    const dbgOut = (await nix.nix('nix-build', ['--store', store, dbg, '--no-out-link', ...SANDBOX])).stdout.trim();
    const caOut = (await nix.nix('nix-build', ['--store', store, ca, '--no-out-link', ...SANDBOX], caConfig)).stdout.trim();
    key = await nix.generateKey('upstream.test-1');
    await nix.sign(store, key.secretPath, [out, dbgOut, caOut]);
    const to = `file://${cacheDir}?write-nar-listing=true&index-debug-info=true`;
    await nix.nix('nix', ['copy', '--store', store, '--to', to, out, dbgOut]);
    await nix.nix('nix', ['store', 'copy-log', '--store', store, '--to', `file://${cacheDir}`, drv]);
    await nix.nix('nix', ['copy', '--store', store, '--to', to, '-f', ca], caConfig);
    realisationPath = `realisations/${(await readdir(join(cacheDir, 'realisations')))[0]}`;
    debugInfoPath = `debuginfo/${(await readdir(join(cacheDir, 'debuginfo')))[0]}`;
  }, 180_000);

  afterAll(() => nix?.dispose());

  describe('pulled through from an upstream', () => {
    let upstream: FakeUpstream;
    let server: RunningApp;

    beforeAll(async () => {
      upstream = await FakeUpstream.start({ dir: cacheDir });
      server = await startApp({ 'cache-upstream-url': [upstream.url], 'cache-upstream-public-key': [key.publicKey] });
    });
    afterAll(async () => {
      await server?.close();
      await upstream?.stop();
    });

    it('serves nix log, nix store ls, the listing, the realisation and the debuginfo, and again with the upstream stopped', async () => {
      const logOf = async () => (await nix.nix('nix', ['log', '--store', server.url, out])).stdout;
      const lsOf = async () => (await nix.nix('nix', ['store', 'ls', '--store', server.url, '-R', out])).stdout;
      const files = [`${hashOf(out)}.ls`, realisationPath, debugInfoPath];
      const get = async () => Promise.all(files.map(async (path) => (await send(`${server.url}/${path}`, 'GET')).body.toString()));
      const expected = await Promise.all(files.map((path) => readFile(join(cacheDir, path), 'utf8')));

      expect(await logOf()).toContain('building-logged-hello\nsecond line\n');
      expect(await lsOf()).toEqual(expect.stringMatching(/\.\/file\n.*\.\/sub\n.*\.\/sub\/y\n/s));
      expect(await get()).toEqual(expected);
      expect(upstream.count(`/log/${baseName(drv)}`)).toBe(1);
      expect(upstream.count(`/${hashOf(out)}.ls`)).toBe(1);
      expect(JSON.parse(expected[1])).toMatchObject({ outPath: expect.stringMatching(/-ca$/) });

      await upstream.stop();
      try {
        expect(await logOf()).toContain('building-logged-hello\nsecond line\n');
        expect(await lsOf()).toContain('./sub/y');
        expect(await get()).toEqual(expected);
      } finally {
        await upstream.restart();
      }
    }, 120_000);

    it('lets Nix with ca-derivations substitute a content-addressed output through the realisation it serves', async () => {
      const client = join(nix.dir, 'ca-client');
      // --max-jobs 0: nothing may be built, so the output can only come from ncps. The realisation Nix
      // wrote carries no signature (Nix 2.8 signs none here), hence require-sigs = false for it.
      const config = `${caConfig}substituters = ${server.url}\nrequire-sigs = false\n`;
      const { stdout } = await nix.nix('nix', ['build', '--store', client, '-f', caFile, '--no-link', '--json', '--max-jobs', '0'], config);
      const [built] = JSON.parse(stdout) as Array<{ outputs: { out: string } }>;

      expect(await nix.readStoreFile(client, built.outputs.out)).toBe('ca\n');
      expect(upstream.count(`/${realisationPath}`)).toBe(1);
    }, 60_000);

    it('answers HEAD with the stored length and type, and 404 for what no upstream has', async () => {
      const listing = await readFile(join(cacheDir, `${hashOf(out)}.ls`));
      const head = await send(`${server.url}/${hashOf(out)}.ls`, 'HEAD');
      expect({ status: head.status, length: head.headers['content-length'], type: head.headers['content-type'] }).toEqual({
        status: 200,
        length: String(listing.length),
        type: 'application/json',
      });
      expect((await send(`${server.url}/upload/log/${baseName(drv)}`, 'HEAD')).status).toBe(200);
      const absent = '0'.repeat(32);
      for (const path of [
        `${absent}.ls`,
        `log/${absent}-nothing.drv`,
        `realisations/sha256:${'0'.repeat(64)}!out.doi`,
        'debuginfo/0123456789abcdef',
      ]) {
        expect({ path, status: (await send(`${server.url}/${path}`, 'GET')).status }).toEqual({ path, status: 404 });
      }
    });

    // As S3-hosted caches made with log-compression / ls-compression serve them (cache.nixos.org: br).
    it.each([
      ['br', async (bytes: Buffer) => brotliCompressSync(bytes)],
      ['gzip', async (bytes: Buffer) => gzipSync(bytes)],
      ['xz', async (bytes: Buffer) => execFileSync('xz', ['-c'], { input: bytes })],
      ['zstd', async (bytes: Buffer) => zstdCompress(bytes)],
    ])(
      'keeps an upstream Content-Encoding %s: stores the encoded bytes and serves them with it, which Nix decodes',
      async (encoding, encode) => {
        const log = await readFile(join(cacheDir, 'log', baseName(drv)));
        const encoded = await encode(log);
        const compressing = await FakeUpstream.start({ dir: cacheDir });
        compressing.serve(`/log/${baseName(drv)}`, encoded, { 'content-encoding': encoding, 'content-type': 'text/plain' });
        const proxy = await startApp({ 'cache-upstream-url': [compressing.url], 'cache-upstream-public-key': [key.publicKey] });
        try {
          const raw = await send(`${proxy.url}/log/${baseName(drv)}`, 'GET');
          expect([raw.headers['content-encoding'], raw.body]).toEqual([encoding, encoded]);
          expect((await nix.nix('nix', ['log', '--store', proxy.url, out])).stdout).toContain('building-logged-hello\nsecond line\n');
          expect(compressing.count(`/log/${baseName(drv)}`)).toBe(1);
        } finally {
          await proxy.close();
          await compressing.stop();
        }
      },
      60_000,
    );

    it('serves build-trace-v2 entries (Nix 2.34+; a fixture written by the format: Nix 2.8 makes none)', async () => {
      const entry = `build-trace-v2/${baseName(drv)}/out.doi`;
      const json = JSON.stringify({ outPath: baseName(out), signatures: [] });
      upstream.serve(`/${entry}`, json, { 'content-type': 'application/json' });

      const first = await send(`${server.url}/${entry}`, 'GET');
      await upstream.stop();
      try {
        const again = await send(`${server.url}/${entry}`, 'GET');
        expect([first.status, first.body.toString(), again.status, again.body.toString()]).toEqual([200, json, 200, json]);
      } finally {
        await upstream.restart();
      }
    });

    it('answers 400 for malformed names, without asking the upstream', async () => {
      upstream.resetCounts();
      const bad = [
        'not-a-hash.ls',
        `${'e'.repeat(32)}.ls`,
        'log/not-a-store-path',
        `log/${'0'.repeat(32)}-bad name.drv`,
        `realisations/sha256:${'0'.repeat(63)}!out.doi`,
        `realisations/sha256:${'0'.repeat(64)}!out`,
        `realisations/sha256:${'0'.repeat(64)}!.hidden.doi`,
        `build-trace-v2/${baseName(drv)}/out`,
        `build-trace-v2/nothash/out.doi`,
        'debuginfo/XYZ',
        'debuginfo/abc',
      ];
      for (const path of bad) {
        expect({ path, status: (await send(`${server.url}/${encodeURI(path)}`, 'GET')).status }).toEqual({ path, status: 400 });
      }
      expect(upstream.requests).toEqual([]);
    });
  });

  describe('from several upstreams', () => {
    it('takes the best priority that has the file, and ignores an encoding Nix could not decode', async () => {
      const drvName = `${'5'.repeat(32)}-raced.drv`;
      const [best, worse, odd] = await Promise.all([FakeUpstream.start(), FakeUpstream.start(), FakeUpstream.start()]);
      best.serve(`/log/${drvName}`, 'from the best\n');
      worse.serve(`/log/${drvName}`, 'from the worse\n');
      odd.serve(`/log/${'6'.repeat(32)}-odd.drv`, 'packed', { 'content-encoding': 'compress' });
      const urls = [`${worse.url}?priority=50`, `${best.url}?priority=20`, `${odd.url}?priority=10`];
      const proxy = await startApp({ 'cache-upstream-url': urls, 'cache-upstream-allow-unsigned': [worse.url, best.url, odd.url] });
      try {
        const got = await send(`${proxy.url}/log/${drvName}`, 'GET');
        expect([got.status, got.body.toString()]).toEqual([200, 'from the best\n']);
        expect((await send(`${proxy.url}/log/${'6'.repeat(32)}-odd.drv`, 'GET')).status).toBe(404);
      } finally {
        await proxy.close();
        await Promise.all([best.stop(), worse.stop(), odd.stop()]);
      }
    });

    it('fetches again a file whose stored object went missing', async () => {
      const upstream = await FakeUpstream.start();
      const path = `log/${'7'.repeat(32)}-lost.drv`;
      upstream.serve(`/${path}`, 'the log\n');
      const proxy = await startApp({ 'cache-upstream-url': [upstream.url], 'cache-upstream-allow-unsigned': [upstream.url] });
      try {
        expect((await send(`${proxy.url}/${path}`, 'GET')).body.toString()).toBe('the log\n');
        await rm(join(proxy.dataDir, 'storage', 'log'), { recursive: true });
        expect((await send(`${proxy.url}/${path}`, 'GET')).body.toString()).toBe('the log\n');
        expect(upstream.count(`/${path}`)).toBe(2);
      } finally {
        await proxy.close();
        await upstream.stop();
      }
    });
  });

  describe('uploaded', () => {
    let server: RunningApp;
    const token = 'artifact-put-token';
    const auth = { authorization: `Bearer ${token}` };

    beforeAll(async () => {
      server = await startApp({ 'cache-allow-put-verb': true, 'cache-allow-delete-verb': true, 'cache-put-token': token });
    });
    afterAll(() => server?.close());

    it('takes nix copy --to with write-nar-listing and nix store copy-log, then serves them to nix log and nix store ls', async () => {
      const netrc = await nix.netrcConfig(server.url, token);
      await nix.copyToHttp(store, `${server.url}/upload?write-nar-listing=true`, [out], netrc);
      await nix.nix('nix', ['store', 'copy-log', '--store', store, '--to', `${server.url}/upload`, drv], netrc);

      const listing = await send(`${server.url}/${hashOf(out)}.ls`, 'GET');
      expect(listing.body.toString()).toBe(await readFile(join(cacheDir, `${hashOf(out)}.ls`), 'utf8'));
      expect((await nix.nix('nix', ['log', '--store', server.url, out])).stdout).toContain('building-logged-hello');
      expect((await nix.nix('nix', ['store', 'ls', '--store', server.url, '-R', out])).stdout).toContain('./sub/y');
    }, 60_000);

    it.each([
      ['listing', `${'2'.repeat(32)}.ls`, '{"version":1,"root":{"type":"regular","size":1,"narOffset":96}}'],
      ['log', `log/${'2'.repeat(32)}-uploaded.drv`, 'an uploaded log\n'],
      ['realisation', `realisations/sha256:${'a'.repeat(64)}!out.doi`, '{"id":"x"}'],
      ['build trace', `build-trace-v2/${'2'.repeat(32)}-uploaded.drv/dev.doi`, '{"outPath":"y"}'],
      ['debuginfo', `debuginfo/${'b'.repeat(40)}`, '{"archive":"../nar/z.nar.xz","member":"m"}'],
    ])('PUT of a %s needs the put token, then GET, HEAD and DELETE work', async (_kind, path, body) => {
      const url = `${server.url}/upload/${path}`;
      expect((await send(url, 'PUT', {}, body)).status).toBe(401);
      expect((await send(url, 'PUT', { authorization: 'Bearer wrong' }, body)).status).toBe(401);
      expect((await send(`${server.url}/${path}`, 'GET')).status).toBe(404);

      expect((await send(url, 'PUT', { ...auth, 'content-type': 'application/octet-stream' }, body)).status).toBe(204);
      const got = await send(`${server.url}/${path}`, 'GET');
      const head = await send(`${server.url}/${path}`, 'HEAD');
      expect([got.status, got.body.toString(), head.status, head.headers['content-length']]).toEqual([200, body, 200, String(body.length)]);

      expect((await send(url, 'DELETE')).status).toBe(401);
      expect((await send(url, 'DELETE', auth)).status).toBe(204);
      expect((await send(`${server.url}/${path}`, 'GET')).status).toBe(404);
    });

    it('keeps a Content-Encoding the client sent and refuses one Nix could not decode', async () => {
      const path = `log/${'3'.repeat(32)}-encoded.drv`;
      const encoded = brotliCompressSync('encoded upload\n');
      expect((await send(`${server.url}/${path}`, 'PUT', { ...auth, 'content-encoding': 'compress' }, encoded)).status).toBe(400);
      expect((await send(`${server.url}/${path}`, 'GET')).status).toBe(404);
      expect((await send(`${server.url}/${path}`, 'PUT', { ...auth, 'content-encoding': 'br' }, encoded)).status).toBe(204);
      const got = await send(`${server.url}/${path}`, 'GET');
      expect([got.headers['content-encoding'], got.body]).toEqual(['br', encoded]);
    });

    it('needs the get token for reads when one is set', async () => {
      const guarded = await startApp({ 'cache-allow-put-verb': true, 'cache-get-token': 'read-token' });
      try {
        const path = `debuginfo/${'c'.repeat(40)}`;
        const read = { authorization: 'Bearer read-token' };
        expect((await send(`${guarded.url}/${path}`, 'PUT', read, '{}')).status).toBe(204);
        expect((await send(`${guarded.url}/${path}`, 'GET')).status).toBe(401);
        expect((await send(`${guarded.url}/${path}`, 'HEAD')).status).toBe(401);
        expect((await send(`${guarded.url}/${path}`, 'GET', read)).status).toBe(200);
      } finally {
        await guarded.close();
      }
    });

    it('refuses a body larger than --cache-max-nar-size with 413 and stores nothing', async () => {
      const small = await startApp({ 'cache-allow-put-verb': true, 'cache-max-nar-size': '1K' });
      try {
        const path = `log/${'4'.repeat(32)}-big.drv`;
        expect((await send(`${small.url}/${path}`, 'PUT', {}, Buffer.alloc(2048, 'x'))).status).toBe(413);
        expect((await send(`${small.url}/${path}`, 'GET')).status).toBe(404);
      } finally {
        await small.close();
      }
    });
  });

  describe('nix-cache-info', () => {
    it('advertises --cache-priority (default 10) and WantMassQuery: 1', async () => {
      const byDefault = await startApp();
      const chosen = await startApp({ 'cache-priority': 25 });
      try {
        const text = async (app: RunningApp) => (await send(`${app.url}/nix-cache-info`, 'GET')).body.toString();
        expect(await text(byDefault)).toBe('StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 10\n');
        expect(await text(chosen)).toBe('StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 25\n');
      } finally {
        await byDefault.close();
        await chosen.close();
      }
    });
  });
});
