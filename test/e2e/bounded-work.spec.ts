import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, readdir, utimes, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { Socket, connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { decompress } from 'zstd-napi';
import { DownloadSlots } from 'src/cache/download/download-slots';
import { nix32Encode } from 'src/nix';
import { RunningApp, startApp } from 'test/support/app';
import { FakeUpstream } from 'test/support/fake-upstream';
import { fakePath, gate } from 'test/support/fake-path';
import { until } from 'test/support/wait';

const IDLE_MS = 1000;
const MAX_NAR = 1024 * 1024;

const narPath = (body: Buffer) => `/nar/${nix32Encode(createHash('sha256').update(body).digest())}.nar`;

/** A raw HTTP/1.1 exchange: headers (and any body) sent by hand, so a test can stall or overrun. */
class RawClient {
  private received = '';
  readonly closed: Promise<void>;

  private constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => (this.received += d.toString('latin1')));
    socket.on('error', () => undefined);
    this.closed = once(socket, 'close').then(() => undefined);
  }

  static async open(url: string): Promise<RawClient> {
    const { hostname, port } = new URL(url);
    const socket = connect(Number(port), hostname);
    await once(socket, 'connect');
    return new RawClient(socket);
  }

  send(data: string | Buffer): Promise<void> {
    return new Promise((resolve) => this.socket.write(data, () => resolve()));
  }

  /** Status of the response, once its status line arrived (or 0 if the connection closed first). */
  async status(timeoutMs = 10_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const m = /^HTTP\/1\.1 (\d{3})/.exec(this.received);
      if (m) return Number(m[1]);
      if (this.socket.destroyed) return 0;
      await sleep(20);
    }
    throw new Error('no response');
  }

  get text(): string {
    return this.received;
  }
}

describe('bounded work: upload limits, idle clients, zstd off the event loop, stale temp files', () => {
  let server: RunningApp;
  let tempPath: string;

  beforeAll(async () => {
    server = await startApp({
      'cache-allow-put-verb': 'true',
      'cache-max-nar-size': String(MAX_NAR),
      'server-request-idle-timeout': `${IDLE_MS}ms`,
    });
    tempPath = server.config.cache.tempPath;
  });
  afterAll(() => server?.close());

  const tempFiles = async () => (await readdir(tempPath).catch(() => [] as string[])).filter((n) => n.startsWith('ncps-dl-'));
  const get = (path: string, headers: Record<string, string> = {}) => fetch(`${server.url}${path}`, { headers });

  it('refuses a NAR upload whose Content-Length is over the cap before reading it (413, connection closed)', async () => {
    const body = randomBytes(MAX_NAR + 1);
    const client = await RawClient.open(server.url);
    await client.send(`PUT ${narPath(body)} HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`);

    expect(await client.status()).toBe(413);
    expect(client.text).toMatch(/connection: close/i);
    await client.closed;
    expect((await get(narPath(body))).status).toBe(404);
    expect(await tempFiles()).toEqual([]);
  });

  it('refuses a chunked NAR upload at the byte past the cap, while the client is still sending', async () => {
    const body = randomBytes(MAX_NAR + 64 * 1024);
    const client = await RawClient.open(server.url);
    await client.send(`PUT ${narPath(body)} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n`);
    for (let at = 0; at < body.length; at += 64 * 1024) {
      const piece = body.subarray(at, at + 64 * 1024);
      await client.send(Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]));
    }
    // No terminating chunk: the body is not over, yet the answer comes.

    expect(await client.status()).toBe(413);
    await client.closed;
    expect((await get(narPath(body))).status).toBe(404);
    expect(await tempFiles()).toEqual([]);
  });

  it('answers 408 to an upload that stops sending, within the idle timeout, and leaves no temp file', async () => {
    const body = randomBytes(200_000);
    const client = await RawClient.open(server.url);
    const started = Date.now();
    await client.send(`PUT ${narPath(body)} HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`);
    await client.send(body.subarray(0, 100_000));

    expect(await client.status()).toBe(408);
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(IDLE_MS - 50);
    expect(elapsed).toBeLessThan(IDLE_MS * 3);
    await client.closed;
    expect(await tempFiles()).toEqual([]);
    expect((await get(narPath(body))).status).toBe(404);
  });

  it('accepts an upload whose client pauses often, but never for a whole idle timeout', async () => {
    const body = randomBytes(300_000);
    const client = await RawClient.open(server.url);
    await client.send(`PUT ${narPath(body)} HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`);
    for (let at = 0; at < body.length; at += 100_000) {
      // Three pauses: more than an idle timeout in all, each far less than one (a margin for a loaded machine).
      await sleep(IDLE_MS * 0.4);
      await client.send(body.subarray(at, at + 100_000));
    }

    expect(await client.status()).toBe(204);
    expect(Buffer.from(await (await get(narPath(body))).arrayBuffer()).equals(body)).toBe(true);
  });

  // Bigger than loopback's socket buffers (several MiB each way), so a client that stops reading
  // leaves bytes on the server's side.
  describe('with a stored 48 MiB uncompressed NAR', () => {
    const block = randomBytes(1024 * 1024);
    const nar = Buffer.concat(Array.from({ length: 48 }, (_, i) => (i % 2 ? block : Buffer.alloc(block.length, i))));
    const MAX = 64 * 1024 * 1024;
    let big: RunningApp;

    beforeAll(async () => {
      big = await startApp({
        'cache-allow-put-verb': 'true',
        'cache-max-nar-size': String(MAX),
        'server-request-idle-timeout': `${IDLE_MS}ms`,
      });
      const res = await fetch(`${big.url}${narPath(nar)}`, { method: 'PUT', body: nar });
      expect(res.status).toBe(204);
    }, 60_000);
    afterAll(() => big?.close());

    it('serves it zstd-encoded (encoded on a worker thread) to a client that asks, decoding to the NAR', async () => {
      const res = await new Promise<{ headers: Record<string, unknown>; body: Buffer }>((resolve, reject) => {
        httpRequest(`${big.url}${narPath(nar)}`, { headers: { 'accept-encoding': 'zstd' } }, (r) => {
          const chunks: Buffer[] = [];
          r.on('data', (c: Buffer) => chunks.push(c));
          r.on('end', () => resolve({ headers: r.headers, body: Buffer.concat(chunks) }));
          r.on('error', reject);
        })
          .on('error', reject)
          .end();
      });

      expect(res.headers['content-encoding']).toBe('zstd');
      expect(res.body.length).toBeLessThan(nar.length);
      expect(decompress(res.body).equals(nar)).toBe(true);
    });

    it('closes the connection of a client that stops reading its NAR for the idle timeout', async () => {
      // Paused: the socket stops reading, the kernel buffers fill, the server's writes stall. A paused
      // socket does not see the close either: it reads what got through once resumed, then the end.
      const client = await RawClient.open(big.url);
      client.socket.pause();
      await client.send(`GET ${narPath(nar)} HTTP/1.1\r\nHost: x\r\n\r\n`);
      await sleep(IDLE_MS * 3);
      client.socket.resume();
      const closedSoon = await Promise.race([client.closed.then(() => true), sleep(5000).then(() => false)]);

      // Kept alive and fed, it would have the whole NAR and stay open.
      expect(closedSoon).toBe(true);
      expect(client.text.length).toBeLessThan(nar.length);
      expect(await client.status()).toBe(200);
    }, 20_000);

    it('does not cut a client that keeps reading, for several idle timeouts in all', async () => {
      // Throttled reading, though not too slow: TCP reopens the window in big steps (socket buffers are
      // MiBs), and the server must see progress within each idle timeout.
      const started = Date.now();
      const received = await new Promise<number>((resolve, reject) => {
        const req = httpRequest(`${big.url}${narPath(nar)}`, (r) => {
          let n = 0;
          r.on('data', (c: Buffer) => {
            n += c.length;
            r.pause();
            setTimeout(() => r.resume(), 8);
          });
          r.on('end', () => resolve(n));
          r.on('aborted', () => reject(new Error(`cut after ${n} bytes`)));
          r.on('error', reject);
        });
        req.on('error', reject);
        req.end();
      });

      expect(received).toBe(nar.length);
      expect(Date.now() - started).toBeGreaterThan(IDLE_MS * 2);
    }, 60_000);
  });

  describe('pulling through from an upstream', () => {
    const slow = fakePath('slow', 60_000);
    const held = fakePath('held', 50_000);
    const queued = fakePath('queued', 40_000);
    const heldNar = gate();
    let upstream: FakeUpstream;
    let proxy: RunningApp;

    beforeAll(async () => {
      upstream = await FakeUpstream.start();
      upstream.serve(`/${slow.hash}.narinfo`, slow.narinfo);
      // Silent for longer than the idle timeout before its headers, then between its chunks.
      upstream.route(slow.narPath, { body: slow.nar, delayMs: IDLE_MS * 2, throttle: { chunkSize: 20_000, intervalMs: IDLE_MS * 1.5 } });
      upstream.serve(`/${held.hash}.narinfo`, held.narinfo);
      upstream.route(held.narPath, { body: held.nar, waitFor: heldNar.wait });
      upstream.serve(`/${queued.hash}.narinfo`, queued.narinfo);
      upstream.serve(queued.narPath, queued.nar);
      proxy = await startApp({
        'cache-upstream-url': [upstream.url],
        'cache-upstream-allow-unsigned': [upstream.url],
        'cache-upstream-response-header-timeout': '10s',
        'cache-upstream-max-concurrent-downloads': '1',
        'server-request-idle-timeout': `${IDLE_MS}ms`,
      });
    });
    afterAll(async () => {
      heldNar.open();
      await proxy?.close();
      await upstream?.stop();
    });

    it('keeps a client that waits on a slow upstream (silent longer than the idle timeout)', async () => {
      expect((await fetch(`${proxy.url}/${slow.hash}.narinfo`)).status).toBe(200);
      const started = Date.now();
      const res = await fetch(`${proxy.url}${slow.narPath}`);
      expect(res.status).toBe(200);
      expect(Date.now() - started).toBeGreaterThan(IDLE_MS * 2);
      expect(Buffer.from(await res.arrayBuffer()).equals(slow.nar)).toBe(true);
    }, 30_000);

    it('runs at most --cache-upstream-max-concurrent-downloads at once: a client waits for the slot, then gets its NAR', async () => {
      // The narinfo miss starts a prefetch of held's NAR, which takes the only slot and hangs upstream.
      expect((await fetch(`${proxy.url}/${held.hash}.narinfo`)).status).toBe(200);
      await until(() => upstream.count(held.narPath) === 1);
      expect((await fetch(`${proxy.url}/${queued.hash}.narinfo`)).status).toBe(200);

      const client = fetch(`${proxy.url}${queued.narPath}`);
      const slots = proxy.app.get(DownloadSlots);
      await until('the client waits for the slot', () => slots.stats.waitingClients === 1);
      expect(upstream.count(queued.narPath)).toBe(0);
      heldNar.open();
      const res = await client;

      expect(res.status).toBe(200);
      expect(Buffer.from(await res.arrayBuffer()).equals(queued.nar)).toBe(true);
      // Its own prefetch, queued behind, found it stored (or joined): one upstream fetch in all, once every
      // download and waiter is gone.
      await until('no download runs or waits', () => Object.values(slots.stats).every((n) => n === 0));
      expect(upstream.count(queued.narPath)).toBe(1);
    }, 30_000);
  });

  it('removes temp files of an earlier run at start, and only those older than the process', async () => {
    const dir = join(server.dataDir, 'stale-tmp');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'ncps-dl-crashed.tmp'), 'half a download');
    const old = new Date(Date.now() - 3600_000 - process.uptime() * 1000);
    await utimes(join(dir, 'ncps-dl-crashed.tmp'), old, old);
    await writeFile(join(dir, 'ncps-dl-live.tmp'), 'written after this process started');
    await writeFile(join(dir, 'unrelated.tmp'), 'not ours');
    await utimes(join(dir, 'unrelated.tmp'), old, old);

    const again = await startApp({ 'cache-temp-path': dir });
    try {
      expect((await readdir(dir)).sort()).toEqual(['ncps-dl-live.tmp', 'unrelated.tmp']);
    } finally {
      await again.close();
    }
  });
});
