import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DownloadRegistry } from 'src/cache/download/download-registry';
import { RunningApp, startApp } from 'test/support/app';
import { FakeUpstream } from 'test/support/fake-upstream';
import { fakePath, gate } from 'test/support/fake-path';

const CHROMIUM = process.env.NCPS_TEST_CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = join(__dirname, '..', '..', 'test-artifacts');
const TOKEN = 'status-page-token';
const run = promisify(execFile);

/** Debian's chromium, headless, with a fresh profile and nothing fetched besides the page. */
async function chromium(args: string[]): Promise<string> {
  const profile = await mkdtemp(join(tmpdir(), 'ncps-chromium-'));
  try {
    const { stdout } = await run(
      CHROMIUM,
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        `--user-data-dir=${profile}`,
        ...args,
      ],
      { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 },
    );
    return stdout;
  } finally {
    await rm(profile, { recursive: true, force: true });
  }
}

const available = existsSync(CHROMIUM);
// Under CI a missing browser fails the test instead of skipping it.
const describeWithChromium = available || process.env.CI === 'true' ? describe : describe.skip;

describeWithChromium('GET /status in headless Chromium', () => {
  const a = fakePath('a', 30_000);
  const b = fakePath('b', 50_000);
  const c = fakePath('c', 20_000);
  const cNar = gate();
  let upstream: FakeUpstream;
  let server: RunningApp;
  const auth = { authorization: `Bearer ${TOKEN}` };
  const get = (path: string) => fetch(`${server.url}${path}`, { headers: auth });

  beforeAll(async () => {
    upstream = await FakeUpstream.start();
    for (const p of [a, b]) {
      upstream.serve(`/${p.hash}.narinfo`, p.narinfo);
      upstream.serve(p.narPath, p.nar);
    }
    upstream.serve(`/${c.hash}.narinfo`, c.narinfo);
    upstream.route(c.narPath, { body: c.nar, waitFor: cNar.wait });
    server = await startApp({
      'prometheus-enabled': true,
      'cache-upstream-url': [upstream.url],
      'cache-upstream-allow-unsigned': [upstream.url],
      'cache-get-token': TOKEN,
      'cache-max-size': '1M',
    });
    // The known workload: 2 narinfo misses, 2 narinfo hits, 2 NARs fetched (misses), one NAR served again (hit).
    for (const p of [a, b]) expect((await get(`/${p.hash}.narinfo`)).status).toBe(200);
    for (const p of [a, b]) expect((await get(`/${p.hash}.narinfo`)).status).toBe(200);
    for (const p of [a, b]) expect(Buffer.from(await (await get(p.narPath)).arrayBuffer()).equals(p.nar)).toBe(true);
    // The NAR is a hit once its download has been committed and has left the registry.
    const downloads = server.app.get(DownloadRegistry);
    for (let i = 0; downloads.size() > 0; i++) {
      if (i > 400) throw new Error('downloads did not end');
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    expect(Buffer.from(await (await get(a.narPath)).arrayBuffer()).equals(a.nar)).toBe(true);
  });
  afterAll(async () => {
    cNar.open();
    await server?.close();
    await upstream?.stop();
  });

  it('has chromium', () => {
    expect(available).toBe(true);
  });

  it('needs the read token, and leaves the narinfo route alone', async () => {
    const anonymous = await fetch(`${server.url}/status`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toMatch(/Basic/);
    const page = await get('/status');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await page.text()).not.toContain(TOKEN);
    expect((await get(`/${a.hash}.narinfo`)).status).toBe(200);
  });

  it('renders the figures of the workload, and a screenshot is kept', async () => {
    // Chromium answers the Basic challenge with the URL's credentials on a top-level navigation.
    const url = `${server.url.replace('http://', `http://nix:${TOKEN}@`)}/status`;
    const dom = await chromium(['--dump-dom', url]);
    const text = (id: string) => new RegExp(`id="${id}">([^<]*)<`).exec(dom)?.[1];
    expect(dom).toContain('<h1>ncps status</h1>');
    expect(text('version')).toMatch(/^\d+\.\d+\.\d+/);
    // Lookups: narinfo 2 misses + 2 hits (+1 hit when the route check above ran), NAR 2 misses + 1 hit.
    expect(text('lookups')).toMatch(/^(3|4) hits, 4 misses$/);
    expect(text('hit-ratio')).toMatch(/^(42\.9|50\.0)%$/);
    const served = a.nar.length * 2 + b.nar.length;
    expect(dom).toContain(`${a.nar.length + b.nar.length} bytes`); // fetched
    expect(Number(/id="served">[^<]*<\/div><div class="muted">(\d+) bytes/.exec(dom)?.[1])).toBeGreaterThanOrEqual(served);
    expect(text('stored')).toBe('78.1 KiB of 1.0 MiB (7.6%)');
    expect(dom).toContain('<svg class="chart"');

    await mkdir(ARTIFACTS, { recursive: true });
    const png = join(ARTIFACTS, 'status-page.png');
    await rm(png, { force: true });
    await chromium([`--screenshot=${png}`, '--window-size=1280,1600', '--hide-scrollbars', url]);
    expect((await stat(png)).size).toBeGreaterThan(20_000);
  });

  it('lists a download in progress with its expected size', async () => {
    expect((await get(`/${c.hash}.narinfo`)).status).toBe(200);
    const response = get(c.narPath); // held back upstream by the gate
    const downloads = server.app.get(DownloadRegistry);
    for (let i = 0; downloads.size() === 0; i++) {
      if (i > 400) throw new Error('the download did not start');
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    const page = await (await get('/status')).text();
    expect(page).toContain(`<code>nar/${c.narName}.nar</code></td><td>0 B of 19.5 KiB (0%)`);
    cNar.open();
    expect(Buffer.from(await (await response).arrayBuffer()).equals(c.nar)).toBe(true);
  });
});
