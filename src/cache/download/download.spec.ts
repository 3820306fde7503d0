import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { TempFile, tempFileIn } from './temp-files';
import { Hashing, NodeHashing } from './hashing';
import { Download, IntegrityError, SizeLimitError } from './download';
import { tailDownload } from './tail-reader';

const hashing = new NodeHashing();

/** Temp files are removed asynchronously once the last reader is released. */
const removedSoon = async (path: string) => {
  for (let i = 0; i < 100 && existsSync(path); i++) await new Promise((r) => setTimeout(r, 10));
  return !existsSync(path);
};

const collect = async (stream: Readable) => {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
};

describe('Download with tailing readers', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ncps-dl-'));
  const data = Buffer.from(Array.from({ length: 300_000 }, (_, i) => i % 251));
  const sha = createHash('sha256').update(data).digest();

  function slowSource(bytes: Buffer, cutAt = Infinity): PassThrough {
    const source = new PassThrough();
    void (async () => {
      for (let i = 0; i < bytes.length; i += 50_000) {
        if (i >= cutAt) return void source.destroy(new Error('upstream cut the connection'));
        source.write(bytes.subarray(i, i + 50_000));
        await new Promise((r) => setTimeout(r, 5));
      }
      source.end();
    })();
    return source;
  }

  it('streams the bytes to readers while downloading and commits once verified', async () => {
    const sut = new Download('nar/x.nar', tempFileIn(dir), { size: data.length, sha256: sha }, hashing);
    const early = tailDownload(sut);
    let committed: Buffer | undefined;
    const run = sut.run(slowSource(data), async (path) => {
      committed = await readFile(path);
    });
    const ranged = tailDownload(sut, 1000, 1999);
    const [a, b] = await Promise.all([collect(early), collect(ranged), run]);
    expect(a.equals(data)).toBe(true);
    expect(b.equals(data.subarray(1000, 2000))).toBe(true);
    expect(committed?.equals(data)).toBe(true);
    expect(await removedSoon(sut.path)).toBe(true);
  });

  it('hands readers the first bytes before any of them is written to the temp file', async () => {
    const real = tempFileIn(dir);
    let created!: () => void;
    const creating = new Promise<void>((resolve) => (created = resolve));
    const slowDisk: TempFile = {
      ...real,
      create: () => {
        const writer = real.create();
        return { writeAt: async (chunks, position) => creating.then(() => writer.writeAt(chunks, position)), close: () => writer.close() };
      },
    };
    const sut = new Download('nar/slow.nar', slowDisk, { size: data.length, sha256: sha }, hashing);
    const source = new PassThrough();
    const run = sut.run(source, async () => undefined);
    const reader = tailDownload(sut);
    const first = new Promise<Buffer>((resolve) => reader.once('data', resolve));
    source.write(data.subarray(0, 1000));
    expect((await first).equals(data.subarray(0, 999))).toBe(true);
    expect(sut.written).toBe(0);
    created();
    source.end(data.subarray(1000));
    await run;
    expect(sut.written).toBe(data.length);
  });

  it('a reader attaching after the end is served from the file until it is released', async () => {
    const sut = new Download('nar/y.nar', tempFileIn(dir), {}, hashing);
    const reader = tailDownload(sut);
    await sut.run(Readable.from([data]), async () => undefined);
    expect((await collect(reader)).length).toBe(data.length);
  });

  it('hashes each chunk as it arrives, the received buffer itself, and commits by the digest the hash gives', async () => {
    const hashed: Buffer[] = [];
    const digest = Buffer.alloc(32, 7);
    const recording: Hashing = { sha256: () => ({ update: (chunk: Buffer) => hashed.push(chunk), digest: () => digest }) };
    const parts = [data.subarray(0, 100_000), data.subarray(100_000)];
    const sut = new Download('nar/h.nar', tempFileIn(dir), { size: data.length, sha256: digest }, recording);
    const commit = jest.fn(async () => undefined);

    await sut.run(Readable.from(parts), commit);

    expect(hashed).toHaveLength(2);
    expect(hashed[0]).toBe(parts[0]); // not a copy
    expect(hashed[1]).toBe(parts[1]);
    expect(commit).toHaveBeenCalledTimes(1);
  });

  it('never commits and errors every reader on a hash mismatch', async () => {
    const tampered = Buffer.from(data);
    tampered[12345] ^= 1;
    const sut = new Download('nar/z.nar', tempFileIn(dir), { size: data.length, sha256: sha }, hashing);
    const reader = tailDownload(sut);
    const commit = jest.fn(async () => undefined);
    await expect(sut.run(slowSource(tampered), commit)).rejects.toThrow(IntegrityError);
    await expect(collect(reader)).rejects.toThrow(/hash mismatch/);
    expect(commit).not.toHaveBeenCalled();
    expect(await removedSoon(sut.path)).toBe(true);
  });

  it('errors readers when the upstream cuts the body midway, and leaves no temp file', async () => {
    const sut = new Download('nar/w.nar', tempFileIn(dir), {}, hashing);
    const reader = tailDownload(sut);
    const commit = jest.fn(async () => undefined);
    await expect(sut.run(slowSource(data, 100_000), commit)).rejects.toThrow(/cut the connection/);
    await expect(collect(reader)).rejects.toThrow(/cut the connection/);
    expect(commit).not.toHaveBeenCalled();
    expect(await removedSoon(sut.path)).toBe(true);
  });

  it('gives readers the last byte once the bytes are verified, before the commit ends', async () => {
    const sut = new Download('nar/r.nar', tempFileIn(dir), { size: data.length, sha256: sha }, hashing);
    const reader = tailDownload(sut);
    let finishCommit: (() => void) | undefined;
    const run = sut.run(slowSource(data), () => new Promise<void>((resolve) => (finishCommit = resolve)));
    const body = await collect(reader);
    expect(body.equals(data)).toBe(true);
    while (!finishCommit) await new Promise((r) => setTimeout(r, 1));
    expect(sut.state).toBe('verified');
    finishCommit();
    await run;
    expect(sut.state).toBe('done');
  });

  it('a reader keeps its verified bytes when the commit fails afterwards; nothing is left behind', async () => {
    const sut = new Download('nar/s.nar', tempFileIn(dir), { size: data.length, sha256: sha }, hashing);
    const reader = tailDownload(sut);
    await expect(sut.run(Readable.from([data]), async () => Promise.reject(new Error('storage is full')))).rejects.toThrow(
      /storage is full/,
    );
    expect((await collect(reader)).equals(data)).toBe(true);
    expect(await removedSoon(sut.path)).toBe(true);
  });

  it('batches tiny chunks: readers are woken per write, not per chunk', async () => {
    const tiny = data.subarray(0, 20_000);
    const sut = new Download(
      'nar/t.nar',
      tempFileIn(dir),
      { size: tiny.length, sha256: createHash('sha256').update(tiny).digest() },
      hashing,
    );
    let wakeUps = 0;
    sut.on('progress', () => (wakeUps += 1));
    const reader = tailDownload(sut);
    // One byte per chunk, all at once: the way a client dribbling an upload looks after a stall.
    const source = new PassThrough();
    for (const byte of tiny) source.write(Buffer.of(byte));
    source.end();
    const [body] = await Promise.all([collect(reader), sut.run(source, async () => undefined)]);
    expect(body.equals(tiny)).toBe(true);
    expect(wakeUps).toBeLessThan(100);
  });

  it('serves readers from the batches it still holds and from the file alike', async () => {
    const big = Buffer.from(Array.from({ length: 5 * 1024 * 1024 }, (_, i) => (i * 7) % 251));
    const sut = new Download(
      'nar/u.nar',
      tempFileIn(dir),
      { size: big.length, sha256: createHash('sha256').update(big).digest() },
      hashing,
    );
    const early = tailDownload(sut);
    let late: Promise<Buffer> | undefined;
    const run = sut.run(slowSource(big), async () => undefined);
    // Starts once most of the file is written: its first bytes come from the file, the rest from memory.
    sut.on('progress', () => {
      if (!late && sut.written > 4 * 1024 * 1024) late = collect(tailDownload(sut, 12_345, big.length - 2));
    });
    const [all] = await Promise.all([collect(early), run]);
    expect(all.equals(big)).toBe(true);
    expect(late).toBeDefined();
    expect((await late!).equals(big.subarray(12_345, big.length - 1))).toBe(true);
    expect(sut.held(0, 10)).toBeUndefined(); // nothing is held once the download ended
  });

  it('refuses a large file that does not hash right, and takes it when it does', async () => {
    const big = Buffer.alloc(6 * 1024 * 1024, 3);
    const digest = createHash('sha256').update(big).digest();
    const tampered = Buffer.from(big);
    tampered[5_000_000] ^= 1;
    const sut = new Download('nar/v.nar', tempFileIn(dir), { size: big.length, sha256: digest }, hashing);
    const reader = tailDownload(sut);
    const commit = jest.fn(async () => undefined);
    await expect(sut.run(slowSource(tampered), commit)).rejects.toThrow(/hash mismatch/);
    await expect(collect(reader)).rejects.toThrow(IntegrityError);
    expect(commit).not.toHaveBeenCalled();
    const right = new Download('nar/w.nar', tempFileIn(dir), { size: big.length, sha256: digest }, hashing);
    await expect(right.run(slowSource(big), commit)).resolves.toBeUndefined();
  });

  it('rejects a body shorter than the expected size', async () => {
    const sut = new Download('nar/v.nar', tempFileIn(dir), { size: data.length + 1 }, hashing);
    await expect(sut.run(Readable.from([data]), async () => undefined)).rejects.toThrow(/size mismatch/);
  });
});

/** A source that never ends: `chunk` after `chunk`, counting what was read from it. */
function endless(chunk: Buffer): { source: Readable; pulled: () => number } {
  let pulled = 0;
  const source = new Readable({
    read() {
      pulled += chunk.length;
      setImmediate(() => this.push(chunk));
    },
  });
  return { source, pulled: () => pulled };
}

describe('Download size limits, enforced while bytes arrive', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ncps-dl-limit-'));

  it('cuts a body at the first byte past the expected size, destroys the source and keeps nothing', async () => {
    const { source, pulled } = endless(Buffer.alloc(1000, 7));
    const sut = new Download('nar/a.nar.xz', tempFileIn(dir), { size: 10_500 }, hashing);
    const reader = tailDownload(sut);
    const commit = jest.fn(async () => undefined);
    await expect(sut.run(source, commit)).rejects.toThrow(/more than the expected 10500 bytes/);
    expect(source.destroyed).toBe(true);
    expect(sut.written).toBe(10_000); // the chunk that crosses the size is never written
    expect(pulled()).toBeLessThan(40_000); // a few chunks of read-ahead, not the endless rest
    await expect(collect(reader)).rejects.toThrow(IntegrityError);
    expect(commit).not.toHaveBeenCalled();
    expect(await removedSoon(sut.path)).toBe(true);
  });

  it('cuts at exactly size + 1 byte', async () => {
    const sut = new Download('nar/b.nar.xz', tempFileIn(dir), { size: 5 }, hashing);
    await expect(sut.run(Readable.from([Buffer.from('abcde'), Buffer.from('f')]), async () => undefined)).rejects.toThrow(IntegrityError);
    const exact = new Download('nar/c.nar.xz', tempFileIn(dir), { size: 5 }, hashing);
    await expect(exact.run(Readable.from([Buffer.from('abcde')]), async () => undefined)).resolves.toBeUndefined();
  });

  it('cuts a body of unknown size at the cap with a SizeLimitError', async () => {
    const { source } = endless(Buffer.alloc(4096, 1));
    const sut = new Download('nar/d.nar.xz', tempFileIn(dir), { maxSize: 100_000 }, hashing);
    const error = await sut.run(source, async () => undefined).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SizeLimitError);
    expect(source.destroyed).toBe(true);
    expect(sut.written).toBeLessThanOrEqual(100_000);
    expect(await removedSoon(sut.path)).toBe(true);
  });

  it('lets a body through up to the cap', async () => {
    const sut = new Download('nar/e.nar', tempFileIn(dir), { maxSize: 4 }, hashing);
    let size = 0;
    await sut.run(Readable.from([Buffer.from('abcd')]), async (path) => void (size = (await stat(path)).size));
    expect(size).toBe(4);
  });
});

describe('Download of a compressed NAR without FileHash: decompressed and checked in the same pass', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ncps-dl-nar-'));
  // Something NAR-sized with structure and noise, so that every codec has real work to do.
  const nar = Buffer.concat(
    Array.from({ length: 40 }, (_, i) => Buffer.concat([Buffer.alloc(5000, i), createHash('sha512').update(String(i)).digest()])),
  );
  const narHash = createHash('sha256').update(nar).digest();
  const tool = (cmd: string, args: string[]) => (data: Buffer) => execFileSync(cmd, args, { input: data, maxBuffer: 1 << 30 });
  const compressors: Record<string, (data: Buffer) => Buffer> = {
    xz: tool('xz', ['-c', '-6']),
    zstd: tool('zstd', ['-c', '-q', '-19']),
    bzip2: tool('bzip2', ['-c', '-9']),
    br: (data) => brotliCompressSync(data, { params: { [constants.BROTLI_PARAM_QUALITY]: 5 } }),
    gzip: (data) => gzipSync(data),
  };

  /** `bytes` sent in small pieces, so that decoding really is incremental. */
  const pieces = (bytes: Buffer, size = 1000) =>
    Readable.from(Array.from({ length: Math.ceil(bytes.length / size) }, (_, i) => bytes.subarray(i * size, (i + 1) * size)));

  describe.each(Object.keys(compressors))('%s', (compression) => {
    const file = compressors[compression](nar);

    it('commits bytes that decompress to NarSize bytes of NarHash', async () => {
      const sut = new Download(`nar/${compression}`, tempFileIn(dir), { nar: { compression, narHash, narSize: nar.length } }, hashing);
      let committed: Buffer | undefined;
      await sut.run(pieces(file), async (path) => void (committed = await readFile(path)));
      expect(committed?.equals(file)).toBe(true);
    });

    it('refuses a wrong NarHash: nothing committed, readers error, no temp file', async () => {
      const wrong = createHash('sha256').update('another NAR').digest();
      const sut = new Download(
        `nar/${compression}`,
        tempFileIn(dir),
        { nar: { compression, narHash: wrong, narSize: nar.length } },
        hashing,
      );
      const reader = tailDownload(sut);
      const commit = jest.fn(async () => undefined);
      await expect(sut.run(pieces(file), commit)).rejects.toThrow(/NarHash mismatch/);
      await expect(collect(reader)).rejects.toThrow(IntegrityError);
      expect(commit).not.toHaveBeenCalled();
      expect(await removedSoon(sut.path)).toBe(true);
    });

    it('refuses a NarSize larger than the decoded bytes', async () => {
      const sut = new Download(`nar/${compression}`, tempFileIn(dir), { nar: { compression, narHash, narSize: nar.length + 1 } }, hashing);
      await expect(sut.run(pieces(file), async () => undefined)).rejects.toThrow(/NarSize mismatch/);
    });

    it('stops as soon as the decoded bytes pass a smaller NarSize', async () => {
      const sut = new Download(`nar/${compression}`, tempFileIn(dir), { nar: { compression, narHash, narSize: 1000 } }, hashing);
      const commit = jest.fn(async () => undefined);
      await expect(sut.run(pieces(file), commit)).rejects.toThrow(/more than its NarSize of 1000/);
      expect(commit).not.toHaveBeenCalled();
    });

    it('refuses bytes that are not valid compressed data', async () => {
      const tampered = Buffer.from(file);
      tampered[Math.floor(tampered.length / 2)] ^= 0x55;
      const sut = new Download(`nar/${compression}`, tempFileIn(dir), { nar: { compression, narHash, narSize: nar.length } }, hashing);
      await expect(sut.run(pieces(tampered), async () => undefined)).rejects.toThrow(IntegrityError);
    });

    it('refuses a truncated file', async () => {
      const sut = new Download(`nar/${compression}`, tempFileIn(dir), { nar: { compression, narHash, narSize: nar.length } }, hashing);
      await expect(sut.run(pieces(file.subarray(0, file.length - 20)), async () => undefined)).rejects.toThrow(IntegrityError);
    });
  });

  it.each(['zstd', 'xz', 'bzip2', 'gzip', 'br'])(
    'a %s bomb (KiBs that decode to 160 MiB, then silence) is cut at NarSize, the loop stays responsive',
    async (compression) => {
      const bomb = compressors[compression](Buffer.alloc(160 << 20));
      // The bomb in small pieces, then silence: the source never ends by itself.
      const source = new PassThrough();
      for (let i = 0; i < bomb.length; i += 1000) source.write(bomb.subarray(i, i + 1000));
      // bzip2 decodes whole blocks (up to ~900 kB of input): a bomb smaller than that is decoded at the end.
      if (compression === 'bzip2') source.end();
      const sut = new Download(`nar/bomb.${compression}`, tempFileIn(dir), { nar: { compression, narHash, narSize: 100 << 20 } }, hashing);
      let worstLag = 0;
      let last = performance.now();
      const ticker = setInterval(() => {
        worstLag = Math.max(worstLag, performance.now() - last);
        last = performance.now();
      }, 5);
      try {
        await expect(sut.run(source, async () => undefined)).rejects.toThrow(/more than its NarSize of 104857600/);
      } finally {
        clearInterval(ticker);
      }
      expect(source.destroyed).toBe(true);
      // Generous: the machine running the tests is shared (a full suite on 2 cores has shown lags over
      // 250 ms); a decoder on the event loop stalls it for seconds.
      expect(worstLag).toBeLessThan(1000);
      expect(await removedSoon(sut.path)).toBe(true);
    },
    60_000,
  );

  it('refuses bytes after the end of the compressed data', async () => {
    for (const compression of ['br', 'gzip', 'xz', 'zstd', 'bzip2']) {
      const file = Buffer.concat([compressors[compression](nar), Buffer.from('trailing garbage')]);
      const sut = new Download(
        `nar/trailing.${compression}`,
        tempFileIn(dir),
        { nar: { compression, narHash, narSize: nar.length } },
        hashing,
      );
      await expect(sut.run(pieces(file), async () => undefined)).rejects.toThrow(IntegrityError);
    }
  });

  it('refuses a compression it cannot decode', async () => {
    const sut = new Download('nar/f.nar.lz4', tempFileIn(dir), { nar: { compression: 'lz4', narHash, narSize: nar.length } }, hashing);
    await expect(sut.run(Readable.from([nar]), async () => undefined)).rejects.toThrow(/cannot check a NAR compressed with lz4/);
  });
});
