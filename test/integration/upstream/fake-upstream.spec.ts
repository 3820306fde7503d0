import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DEFAULT_CACHE_INFO, FakeUpstream, startBlackhole } from 'test/support/fake-upstream';

/** A GET whose path is sent as written (fetch would normalise the dot segments away). */
function rawStatus(port: number, path: string): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path }, (res) => {
      res.resume();
      resolve(res.statusCode);
    })
      .on('error', reject)
      .end();
  });
}

// Other suites rely on these behaviours of the fake upstream: they are held here.
describe('FakeUpstream', () => {
  let dir: string;
  let sut: FakeUpstream;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ncps-fake-upstream-'));
    await mkdir(join(dir, 'nar'));
    await writeFile(join(dir, 'nar', 'abc.nar.xz'), 'NAR-CONTENT');
    await writeFile(join(dir, 'abc.narinfo'), 'StorePath: x\n');
    sut = await FakeUpstream.start({ dir });
  });

  afterEach(async () => {
    await sut.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const get = (path: string, init?: RequestInit) => fetch(`${sut.url}${path}`, init);

  it('serves the directory by path, ignoring the query string, with Nix content types', async () => {
    const nar = await get('/nar/abc.nar.xz?hash=1');
    expect(nar.status).toBe(200);
    expect(nar.headers.get('content-type')).toBe('application/x-nix-nar');
    expect(nar.headers.get('content-length')).toBe('11');
    expect(await nar.text()).toBe('NAR-CONTENT');
    expect((await get('/abc.narinfo')).headers.get('content-type')).toBe('text/x-nix-narinfo');
    expect((await get('/missing.narinfo')).status).toBe(404);
    await writeFile(join(dir, '..', 'outside-the-cache'), 'secret');
    expect(await rawStatus(sut.port, `/../${dir.split('/').pop()}/../outside-the-cache`)).toBe(404);
    await rm(join(dir, '..', 'outside-the-cache'));
  });

  it('serves a default nix-cache-info, or none', async () => {
    expect(await (await get('/nix-cache-info')).text()).toBe(DEFAULT_CACHE_INFO);
    const bare = await FakeUpstream.start({ cacheInfo: null });
    try {
      expect((await fetch(`${bare.url}/nix-cache-info`)).status).toBe(404);
    } finally {
      await bare.stop();
    }
  });

  it('answers HEAD with headers only', async () => {
    const head = await get('/nar/abc.nar.xz', { method: 'HEAD' });
    expect(head.headers.get('content-length')).toBe('11');
    expect(await head.text()).toBe('');
  });

  it('counts and records requests per path, until reset', async () => {
    await get('/abc.narinfo');
    await get('/abc.narinfo?x=1', { headers: { authorization: 'Basic eA==' } });
    expect(sut.count('/abc.narinfo')).toBe(2);
    expect(sut.requests.map((r) => r.url)).toEqual(['/abc.narinfo', '/abc.narinfo?x=1']);
    expect(sut.requests[1].headers.authorization).toBe('Basic eA==');
    sut.resetCounts();
    expect(sut.count('/abc.narinfo')).toBe(0);
    expect(sut.requests).toEqual([]);
  });

  it('overrides status and body, and falls back to the directory after unroute', async () => {
    sut.route('/abc.narinfo', { status: 500 });
    expect((await get('/abc.narinfo')).status).toBe(500);
    sut.serve('/abc.narinfo', 'other');
    expect(await (await get('/abc.narinfo')).text()).toBe('other');
    sut.unroute('/abc.narinfo');
    expect(await (await get('/abc.narinfo')).text()).toBe('StorePath: x\n');
  });

  it('tampers with one byte of a file, keeping its length', async () => {
    sut.route('/nar/abc.nar.xz', { tamper: 0 });
    const body = Buffer.from(await (await get('/nar/abc.nar.xz')).arrayBuffer());
    expect(body.length).toBe(11);
    expect(body[0]).toBe('N'.charCodeAt(0) ^ 0xff);
    expect(body.subarray(1).toString()).toBe('AR-CONTENT');
  });

  it('cuts a body after N bytes while announcing it whole', async () => {
    sut.route('/nar/abc.nar.xz', { cutAfterBytes: 4 });
    const response = await get('/nar/abc.nar.xz');
    expect(response.headers.get('content-length')).toBe('11');
    await expect(response.text()).rejects.toThrow();
  });

  it('delays headers, holds requests until released, throttles bodies', async () => {
    sut.route('/slow', { body: 'x', delayMs: 150 });
    let started = Date.now();
    await get('/slow');
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);

    let release!: () => void;
    sut.route('/held', { body: 'x', waitFor: new Promise<void>((resolve) => (release = resolve)) });
    let answered = false;
    const held = get('/held').then(() => (answered = true));
    await sleep(100);
    expect(answered).toBe(false);
    release();
    await held;

    sut.route('/drip', { body: 'abcdef', throttle: { chunkSize: 2, intervalMs: 50 } });
    started = Date.now();
    expect(await (await get('/drip')).text()).toBe('abcdef');
    expect(Date.now() - started).toBeGreaterThanOrEqual(95);
  });

  it('stops (dropping stalled connections) and restarts on the same port', async () => {
    sut.route('/stall', { body: 'abcdef', stallAfterBytes: 2 });
    const stalled = get('/stall').then((response) => response.text());
    await sleep(50);
    const port = sut.port;
    await sut.stop();
    await expect(stalled).rejects.toThrow();
    await expect(get('/abc.narinfo')).rejects.toThrow();
    await sut.restart();
    expect(sut.port).toBe(port);
    expect((await get('/abc.narinfo')).status).toBe(200);
  });

  it('hands full control to a handler', async () => {
    sut.route('/custom', (_req, res) => res.writeHead(418).end('teapot'));
    const response = await get('/custom');
    expect(response.status).toBe(418);
    expect(await response.text()).toBe('teapot');
  });
});

describe('startBlackhole', () => {
  it('leaves connections hanging', async () => {
    const sut = await startBlackhole();
    try {
      const socket = connect(Number(new URL(sut.url).port), '127.0.0.1').on('error', () => undefined);
      await sleep(300);
      expect(socket.connecting).toBe(true);
      socket.destroy();
    } finally {
      await sut.stop();
    }
  });
});
