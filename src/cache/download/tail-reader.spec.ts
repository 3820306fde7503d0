import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdtempSync } from 'node:fs';
import { Server, createServer, get } from 'node:http';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { tempFileIn } from './temp-files';
import { NodeHashing } from './hashing';
import { Download } from './download';
import { tailDownload } from './tail-reader';

const hashing = new NodeHashing();

/** What an HTTP client received: every byte until the response ended, or until it broke. */
async function fetchBody(url: string, pauseMs = 0): Promise<{ body: Buffer; complete: boolean }> {
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        // A slow client: the server's writes have to wait for it.
        if (pauseMs > 0) {
          res.pause();
          setTimeout(() => res.resume(), pauseMs);
        }
      });
      res.on('end', () => resolve({ body: Buffer.concat(chunks), complete: res.complete }));
      res.on('error', () => resolve({ body: Buffer.concat(chunks), complete: false }));
    }).on('error', reject);
  });
}

describe('tailDownload piped into an HTTP response', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ncps-tail-'));
  const data = Buffer.from(Array.from({ length: 3 * 1024 * 1024 + 123 }, (_, i) => (i * 13) % 251));
  const sha = createHash('sha256').update(data).digest();
  let server: Server;
  let url: string;
  let serve: () => Readable;

  beforeAll(async () => {
    server = createServer((_req, res) => {
      const body = serve();
      // As Fastify sends a stream: errors destroy the response, the response's end destroys the body.
      body.on('error', () => res.destroy());
      res.on('close', () => body.destroy());
      body.pipe(res);
    }).listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  afterAll(() => server.close());

  /** `bytes` in 64 KiB pieces, one every `intervalMs`. */
  function trickle(bytes: Buffer, intervalMs: number, cutAt = Infinity): PassThrough {
    const source = new PassThrough();
    void (async () => {
      for (let i = 0; i < bytes.length; i += 65_536) {
        if (i >= cutAt) return void source.destroy(new Error('upstream cut the connection'));
        source.write(bytes.subarray(i, i + 65_536));
        await new Promise((r) => setTimeout(r, intervalMs));
      }
      source.end();
    })();
    return source;
  }

  it('sends every byte to clients that follow the download, fast or slow, and to a late one', async () => {
    const sut = new Download('nar/p.nar', tempFileIn(dir), { size: data.length, sha256: sha }, hashing);
    serve = () => tailDownload(sut);
    const run = sut.run(trickle(data, 2), async () => undefined);
    const [fast, slow] = await Promise.all([fetchBody(url), fetchBody(url, 5)]);
    await run;
    expect(fast.complete && fast.body.equals(data)).toBe(true);
    expect(slow.complete && slow.body.equals(data)).toBe(true);
  });

  it('a ranged reader gets its range, from the file and from memory', async () => {
    const sut = new Download('nar/q.nar', tempFileIn(dir), { size: data.length, sha256: sha }, hashing);
    const start = 100_000;
    const end = data.length - 10;
    serve = () => tailDownload(sut, start, end);
    const run = sut.run(trickle(data, 1), async () => undefined);
    await new Promise((r) => sut.once('progress', r));
    const ranged = await fetchBody(url);
    await run;
    expect(ranged.body.equals(data.subarray(start, end + 1))).toBe(true);
  });

  it('breaks the response, never ends it, when the download fails before it was verified', async () => {
    const sut = new Download('nar/r.nar', tempFileIn(dir), { size: data.length, sha256: sha }, hashing);
    serve = () => tailDownload(sut);
    const run = sut.run(trickle(data, 1, 1024 * 1024), async () => undefined);
    const client = fetchBody(url);
    await expect(run).rejects.toThrow(/cut the connection/);
    const { body, complete } = await client;
    expect(complete).toBe(false);
    expect(body.length).toBeLessThan(data.length);
  });

  it('releases the temp file when the client hangs up', async () => {
    const sut = new Download('nar/s.nar', tempFileIn(dir), { size: data.length, sha256: sha }, hashing);
    serve = () => tailDownload(sut);
    const source = trickle(data, 20);
    const run = sut.run(source, async () => undefined);
    await new Promise<void>((resolve, reject) => {
      const req = get(url, (res) => res.once('data', () => (req.destroy(), resolve())));
      req.on('error', reject);
    });
    await run;
    for (let i = 0; i < 100 && existsSync(sut.path); i++) await new Promise((r) => setTimeout(r, 10));
    expect(existsSync(sut.path)).toBe(false);
  });
});
