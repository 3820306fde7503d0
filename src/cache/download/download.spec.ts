import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { Download, IntegrityError } from './download';
import { tailDownload } from './tail-reader';

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
    const sut = new Download('nar/x.nar', dir, { size: data.length, sha256: sha });
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

  it('a reader attaching after the end is served from the file until it is released', async () => {
    const sut = new Download('nar/y.nar', dir, {});
    const reader = tailDownload(sut);
    await sut.run(Readable.from([data]), async () => undefined);
    expect((await collect(reader)).length).toBe(data.length);
  });

  it('never commits and errors every reader on a hash mismatch', async () => {
    const tampered = Buffer.from(data);
    tampered[12345] ^= 1;
    const sut = new Download('nar/z.nar', dir, { size: data.length, sha256: sha });
    const reader = tailDownload(sut);
    const commit = jest.fn(async () => undefined);
    await expect(sut.run(slowSource(tampered), commit)).rejects.toThrow(IntegrityError);
    await expect(collect(reader)).rejects.toThrow(/hash mismatch/);
    expect(commit).not.toHaveBeenCalled();
    expect(await removedSoon(sut.path)).toBe(true);
  });

  it('errors readers when the upstream cuts the body midway, and leaves no temp file', async () => {
    const sut = new Download('nar/w.nar', dir, {});
    const reader = tailDownload(sut);
    const commit = jest.fn(async () => undefined);
    await expect(sut.run(slowSource(data, 100_000), commit)).rejects.toThrow(/cut the connection/);
    await expect(collect(reader)).rejects.toThrow(/cut the connection/);
    expect(commit).not.toHaveBeenCalled();
    expect(await removedSoon(sut.path)).toBe(true);
  });

  it('rejects a body shorter than the expected size', async () => {
    const sut = new Download('nar/v.nar', dir, { size: data.length + 1 });
    await expect(sut.run(Readable.from([data]), async () => undefined)).rejects.toThrow(/size mismatch/);
  });
});
