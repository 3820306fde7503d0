import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { decompress } from 'zstd-napi';
import { ZstdEncoderPool, wantsZstd } from './zstd-encoding';

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function* take(stream: Readable, n: number): AsyncGenerator<Buffer> {
  let left = n;
  for await (const c of stream.iterator({ destroyOnReturn: false })) {
    yield c as Buffer;
    if (--left === 0) return;
  }
}

/** `total` bytes of compressible NAR-like data, produced on demand in 64 KiB chunks; counts what was read. */
function generated(total: number): Readable & { produced: () => number } {
  let produced = 0;
  const line = Buffer.from('nix archive: /nix/store/some-path/bin/tool\n'.repeat(1500)).subarray(0, 64 * 1024);
  const source = new Readable({
    read() {
      if (produced >= total) return void this.push(null);
      const n = Math.min(line.length, total - produced);
      produced += n;
      this.push(line.subarray(0, n));
    },
  });
  return Object.assign(source, { produced: () => produced });
}

describe('zstd content encoding of uncompressed NARs', () => {
  const NAR = `${'1'.repeat(52)}.nar`;

  it.each([
    ['zstd', true],
    ['gzip, zstd;q=0.5', true],
    ['gzip, zstd;q=0', false],
    ['gzip, br', false],
    [undefined, false],
  ])('Accept-Encoding %p → %p', (header, expected) => {
    expect(wantsZstd(NAR, { 'accept-encoding': header })).toBe(expected);
  });

  it('never re-encodes a NAR that is already compressed', () => {
    expect(wantsZstd(`${'1'.repeat(52)}.nar.xz`, { 'accept-encoding': 'zstd' })).toBe(false);
  });
});

describe('ZstdEncoderPool', () => {
  let sut: ZstdEncoderPool;
  afterEach(() => sut.onModuleDestroy());

  it('encodes on a worker thread into a stream that decodes back to the same bytes', async () => {
    sut = new ZstdEncoderPool({ workers: 1, streamsPerWorker: 2 });
    const data = Buffer.from('nix archive '.repeat(10_000));

    const encoded = await collect(sut.encode(Readable.from([data.subarray(0, 5000), data.subarray(5000), Buffer.alloc(0)])));

    expect(encoded.length).toBeLessThan(data.length / 10);
    expect(decompress(encoded).equals(data)).toBe(true);
  });

  it('keeps concurrent streams apart across threads', async () => {
    sut = new ZstdEncoderPool({ workers: 2, streamsPerWorker: 2 });
    const inputs = [0, 1, 2, 3].map((i) => Buffer.from(`stream ${i} `.repeat(50_000 + i * 7_000)));
    const chunked = (b: Buffer) =>
      Readable.from(Array.from({ length: Math.ceil(b.length / 65536) }, (_, k) => b.subarray(k * 65536, (k + 1) * 65536)));

    const outputs = await Promise.all(inputs.map((b) => collect(sut.encode(chunked(b)))));

    outputs.forEach((out, i) => expect(decompress(out).equals(inputs[i])).toBe(true));
  });

  it('honours its cap: no room while full, room again once a stream ends', async () => {
    sut = new ZstdEncoderPool({ workers: 1, streamsPerWorker: 2 });
    const first = sut.encode(generated(1024 * 1024));
    sut.encode(generated(1024 * 1024));

    expect(sut.hasRoom()).toBe(false);
    expect(() => sut.encode(generated(10))).toThrow('full');
    await collect(first);
    expect(sut.hasRoom()).toBe(true);
    expect(sut.active).toBe(1);
  });

  it('reads its source only as fast as the encoded stream is read (backpressure across the thread)', async () => {
    sut = new ZstdEncoderPool({ workers: 1, streamsPerWorker: 1 });
    // Incompressible, so the encoded bytes are as big as the input and fill the reader's buffer.
    let produced = 0;
    const source = new Readable({
      read() {
        produced += 65536;
        this.push(randomBytes(65536));
      },
    });
    const encoded = sut.encode(source);
    await sleep(500);
    const whileNotRead = produced;
    const firstChunks = await collect(Readable.from(take(encoded, 64)));

    // A few chunks in buffers at most, never the endless source; reading takes more of it.
    expect(whileNotRead).toBeLessThan(2 * 1024 * 1024);
    expect(firstChunks.length).toBeGreaterThan(0);
    expect(produced).toBeGreaterThan(whileNotRead);
    encoded.destroy();
  });

  it('fails the encoded stream when the source fails, and frees its place', async () => {
    sut = new ZstdEncoderPool({ workers: 1, streamsPerWorker: 1 });
    const source = new Readable({ read() {} });
    const encoded = sut.encode(source);
    source.push(Buffer.from('partial'));
    source.destroy(new Error('upstream cut'));

    await expect(collect(encoded)).rejects.toThrow();
    expect(sut.hasRoom()).toBe(true);
  });

  it('survives a dead thread: its streams fail, the next stream gets a fresh thread', async () => {
    sut = new ZstdEncoderPool({ workers: 1, streamsPerWorker: 2 });
    const doomed = sut.encode(new Readable({ read() {} }));
    const failed = expect(collect(doomed)).rejects.toThrow('exited');
    await (sut as unknown as { threads: { worker: { terminate(): Promise<number> } }[] }).threads[0].worker.terminate();
    await failed;

    const data = Buffer.from('after restart '.repeat(1000));
    expect(decompress(await collect(sut.encode(Readable.from([data])))).equals(data)).toBe(true);
  });
});
