import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startApp } from 'test/support/app';
import { FakeUpstream } from 'test/support/fake-upstream';
import { gate } from 'test/support/fake-path';
import { NixWorkspace } from 'test/support/nix';
import { Scrape } from 'test/support/prometheus';
import { until } from 'test/support/wait';

/** The built CLI (NCPS_TEST_MAIN: a private build while the shared dist is in use). */
const MAIN = process.env.NCPS_TEST_MAIN ?? join(__dirname, '../../dist/src/main.js');
const TOKEN = 'warm-put-token';

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

const ran = (error: { code?: unknown } | null, stdout: string, stderr: string): Ran => ({
  code: error ? (typeof error.code === 'number' ? error.code : 1) : 0,
  stdout,
  stderr,
});

/** Runs the built `ncps` with pipes for its output (no terminal), feeding `stdin` when given. */
function ncps(args: string[], stdin?: string): Promise<Ran> {
  return new Promise((resolve) => {
    const env = { PATH: process.env.PATH, HOME: process.env.HOME };
    const child = execFile(process.execPath, [MAIN, ...args], { env }, (error, stdout, stderr) => resolve(ran(error, stdout, stderr)));
    child.stdin!.end(stdin ?? '');
  });
}

/** Runs the built `ncps` under a pseudo-terminal (util-linux `script`): stdout and stderr are a TTY, merged. */
function ncpsOnTerminal(args: string[]): Promise<Ran> {
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const command = [process.execPath, MAIN, ...args].map(quote).join(' ');
  return new Promise((resolve) => {
    const env = { PATH: process.env.PATH, HOME: process.env.HOME, TERM: 'dumb' };
    execFile('script', ['-qec', command, '/dev/null'], { env }, (error, stdout, stderr) => resolve(ran(error, stdout, stderr)));
  });
}

const hashOf = (storePath: string) => storePath.slice('/nix/store/'.length, '/nix/store/'.length + 32);

/**
 * Warming with the real Nix client's binary cache as the upstream: `ncps warm` (a process, as an
 * operator runs it) and `POST /warm` fetch whole closures once, and the cache then serves them to a
 * fresh Nix client with the upstream gone.
 */
describe('warming the cache', () => {
  let nix: NixWorkspace;
  let cacheDir: string;
  let upstreamKey: { secretPath: string; publicKey: string };
  let closure: string[];
  let top: string;
  /** A path outside the closure, for a client to ask for while warming runs. */
  let other: string;
  let upstream: FakeUpstream;
  let dirs: string[] = [];

  beforeAll(async () => {
    nix = await NixWorkspace.create();
    const store = join(nix.dir, 'upstream-store');
    await mkdir(store, { recursive: true });
    const [leaf, big, elsewhere] = await nix.addFiles(store, {
      'leaf.txt': 'leaf\n',
      'big.bin': Buffer.alloc(300_000, 7),
      'other.txt': 'other\n',
    });
    other = elsewhere;
    const middle = await nix.buildWithReferences(store, 'middle', [leaf]);
    top = await nix.buildWithReferences(store, 'top', [middle, big, leaf]);
    closure = [top, middle, big, leaf];
    upstreamKey = await nix.generateKey('upstream.warm-1');
    await nix.sign(store, upstreamKey.secretPath, [top, other]);
    cacheDir = join(nix.dir, 'cache');
    await nix.copyToFileCache(store, cacheDir, 'xz', [top, other]);
  }, 180_000);

  afterAll(() => nix?.dispose());

  beforeEach(async () => {
    upstream = await FakeUpstream.start({ dir: cacheDir });
  });
  afterEach(async () => {
    await upstream?.stop();
    await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
    dirs = [];
  });

  async function dataDir(): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'ncps-warm-'));
    dirs.push(dir);
    return dir;
  }

  /** The flags of an instance on `dir` in front of the upstream (the CLI takes the serve configuration). */
  const flagsFor = (dir: string) => ({
    'cache-data-dir': dir,
    'cache-temp-path': join(dir, 'tmp'),
    'cache-hostname': 'ncps-warm-test',
    'cache-upstream-url': [upstream.url],
    'cache-upstream-public-key': [upstreamKey.publicKey],
  });
  const cliFlags = (dir: string) =>
    Object.entries(flagsFor(dir)).flatMap(([flag, value]) => (Array.isArray(value) ? value : [value]).map((v) => `--${flag}=${v}`));

  /** The upstream URL path of a path's NAR. */
  async function narPathOf(path: string): Promise<string> {
    const narinfo = await readFile(join(cacheDir, `${hashOf(path)}.narinfo`), 'utf8');
    return `/${/^URL: (.*)$/m.exec(narinfo)![1]}`;
  }

  /** The upstream requests for each narinfo and NAR of the closure. */
  async function upstreamCounts(): Promise<number[]> {
    const counts: number[] = [];
    for (const path of closure) counts.push(upstream.count(`/${hashOf(path)}.narinfo`), upstream.count(await narPathOf(path)));
    return counts;
  }

  /** Resolves once `condition` holds (checked every few ms; the test's timeout bounds the wait). */
  it('ncps warm fetches every path of the closure once, then a Nix client copies it with the upstream gone', async () => {
    const dir = await dataDir();

    const run = await ncps(['warm', ...cliFlags(dir), top]);

    expect(run.stderr).not.toContain('\r');
    for (const path of closure) expect(run.stderr).toMatch(new RegExp(`^fetched ${path} \\(`, 'm'));
    expect(run.stdout).toMatch(/^warmed 4 paths: 4 fetched, 0 already cached, 0 failed; /m);
    expect(run.code).toBe(0);
    expect(await upstreamCounts()).toEqual(Array(8).fill(1));

    await upstream.stop();
    const server = await startApp(flagsFor(dir));
    try {
      const pubkey = await (await fetch(`${server.url}/pubkey`)).text();
      const client = await nix.copyFromHttp(server.url, pubkey, [top]);
      expect(await nix.readStoreFile(client, closure[1])).toContain(closure[3]);
      expect(await nix.readStoreFile(client, closure[3])).toBe('leaf\n');
    } finally {
      await server.close();
    }
  }, 120_000);

  it('warming again fetches nothing, and a missing path, a bad line or an unreadable file make it exit 1', async () => {
    const dir = await dataDir();
    expect((await ncps(['warm', ...cliFlags(dir), top])).code).toBe(0);
    upstream.resetCounts();
    const list = join(dir, 'paths.txt');
    await writeFile(list, `# the roots\n${closure[1]}\n\nnot a store path\n`);
    const missing = '0c0f8f3b0sv1m4ahbcw8h9i2zj0b2a5a';

    const run = await ncps(['warm', ...cliFlags(dir), list, '-', join(dir, 'absent.txt')], `${hashOf(top)}\n${missing}\n`);

    expect(run.stdout).toMatch(/^warmed 7 paths: 0 fetched, 4 already cached, 3 failed; 0 B in /m);
    expect(run.stderr).toMatch(/^failed {2}not a store path: neither a store path nor a store path hash$/m);
    expect(run.stderr).toMatch(new RegExp(`^failed  ${missing}: not found in any upstream$`, 'm'));
    expect(run.stderr).toMatch(/^failed {2}\S+absent\.txt: neither a store path, a store path hash nor a readable file \(ENOENT\)$/m);
    expect(run.stderr).toMatch(/^ncps: 3 of 7 paths could not be warmed$/m);
    expect(run.code).toBe(1);
    expect((await upstreamCounts()).every((n) => n === 0)).toBe(true);
    expect(upstream.count(`/${missing}.narinfo`)).toBe(1);
  }, 60_000);

  it('exits 2 on a usage error, without touching the upstream', async () => {
    const dir = await dataDir();
    const bad = await ncps(['warm', ...cliFlags(dir), '--concurrency', '0', top]);
    expect(bad.stderr).toMatch(/--concurrency <n>.*invalid/);
    expect(bad.code).toBe(2);
    expect((await ncps(['warm', ...cliFlags(dir)])).code).toBe(2);
    expect(upstream.requests).toEqual([]);
  });

  it('draws a progress bar in place on a terminal', async () => {
    const dir = await dataDir();

    const run = await ncpsOnTerminal(['warm', ...cliFlags(dir), top]);

    expect(run.stdout).toContain('\r\x1b[Kwarming [');
    // Redrawn as the closure is discovered and fetched, ending full: paths, bytes, rate.
    expect(run.stdout).toMatch(/\r\x1b\[Kwarming \[\.{20}\] 0\/1 paths /);
    expect(run.stdout).toMatch(/\r\x1b\[Kwarming \[#{20}\] 4\/4 paths {2}\d+(\.\d)? (B|KiB) {2}\S+ (B|KiB|MiB)\/s\r?\n/);
    expect(run.stdout).not.toMatch(/^fetched /m); // successes are in the bar, not lines
    expect(run.stdout).toMatch(/warmed 4 paths: 4 fetched/);
    expect(run.code).toBe(0);
    expect(await upstreamCounts()).toEqual(Array(8).fill(1));
  }, 60_000);

  describe('POST /warm', () => {
    it('needs the put token, warms in the background, and shows its progress in /metrics', async () => {
      const dir = await dataDir();
      const server = await startApp({ ...flagsFor(dir), 'cache-put-token': TOKEN, 'prometheus-enabled': true });
      try {
        const post = (headers: Record<string, string>, body: string, query = '') =>
          fetch(`${server.url}/warm${query}`, { method: 'POST', headers, body });

        expect((await post({}, JSON.stringify([top]))).status).toBe(401);
        expect((await post({ authorization: 'Bearer wrong' }, top)).status).toBe(401);
        const bad = await post({ authorization: `Bearer ${TOKEN}` }, `${top}\nnot-a-path\n`);
        expect(bad.status).toBe(400);
        expect(await bad.text()).toContain('not-a-path');
        expect((await post({ authorization: `Bearer ${TOKEN}` }, top, '?concurrency=0')).status).toBe(400);
        expect((await post({ authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, '{"paths":1}')).status).toBe(400);
        expect(upstream.requests.filter((r) => r.url.endsWith('.narinfo'))).toEqual([]);

        const accepted = await post(
          { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
          JSON.stringify([top]),
          '?concurrency=2',
        );
        expect(accepted.status).toBe(202);
        expect(await accepted.json()).toEqual({ id: expect.stringMatching(/^[0-9a-f-]{36}$/), paths: 1 });

        let scrape = await Scrape.of(server.url);
        await until(async () => {
          scrape = await Scrape.of(server.url);
          return scrape.value('ncps_warm_in_progress') === 0;
        });
        expect(scrape.value('ncps_warm_paths_total', { result: 'fetched' })).toBe(4);
        expect(scrape.value('ncps_warm_paths_total', { result: 'failed' })).toBe(0);
        expect(scrape.value('ncps_warm_bytes_total')).toBeGreaterThan(0);
        expect(scrape.value('ncps_warm_paths_pending')).toBe(0);
        expect(await upstreamCounts()).toEqual(Array(8).fill(1));

        // The cache's /:name routes still answer GET beside it.
        expect((await fetch(`${server.url}/${hashOf(top)}.narinfo`)).status).toBe(200);
      } finally {
        await server.close();
      }
    }, 60_000);

    it('leaves live clients ahead: a client NAR download starts while warming holds all its slots', async () => {
      const held = gate();
      for (const path of closure) upstream.route(await narPathOf(path), { waitFor: held.wait });
      // Two download slots: warming (prefetch priority) may hold one of them at most.
      const server = await startApp({
        ...flagsFor(await dataDir()),
        'cache-put-token': TOKEN,
        'prometheus-enabled': true,
        'cache-upstream-max-concurrent-downloads': 2,
        'cache-upstream-response-header-timeout': '60s',
      });
      try {
        const warming = await fetch(`${server.url}/warm?concurrency=4`, {
          method: 'POST',
          headers: { authorization: `Bearer ${TOKEN}` },
          body: top,
        });
        expect(warming.status).toBe(202);
        const warmNars = async () =>
          (await Promise.all(closure.map(async (p) => upstream.count(await narPathOf(p))))).reduce((a, b) => a + b);
        await until(async () => (await warmNars()) >= 1 && upstream.count(`/${hashOf(closure[3])}.narinfo`) === 1);

        const served = await (await fetch(`${server.url}/${hashOf(other)}.narinfo`)).text();
        const client = await fetch(`${server.url}/${/^URL: (.*)$/m.exec(served)![1]}`);

        expect(client.status).toBe(200);
        expect(await client.text()).toBeTruthy();
        expect(await warmNars()).toBe(1); // still held upstream: the client did not wait for warming
        held.open();
        await until(async () => (await Scrape.of(server.url)).value('ncps_warm_paths_total', { result: 'fetched' }) === closure.length);
        expect(await upstreamCounts()).toEqual(Array(8).fill(1));
      } finally {
        held.open();
        await server.close();
      }
    }, 60_000);

    it('is refused when no put token is configured', async () => {
      const server = await startApp(flagsFor(await dataDir()));
      try {
        const answer = await fetch(`${server.url}/warm`, { method: 'POST', body: top });
        expect(answer.status).toBe(405);
        expect(upstream.count(`/${hashOf(top)}.narinfo`)).toBe(0);
      } finally {
        await server.close();
      }
    });
  });
});
