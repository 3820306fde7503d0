import { Readable } from 'node:stream';
import { decompress } from 'zstd-napi';
import { wantsZstd, zstdEncode } from './zstd-encoding';

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

  it('encodes a stream that decodes back to the same bytes', async () => {
    const data = Buffer.from('nix archive '.repeat(10_000));
    const chunks: Buffer[] = [];
    for await (const c of zstdEncode(Readable.from([data.subarray(0, 5000), data.subarray(5000)]))) chunks.push(c as Buffer);
    const encoded = Buffer.concat(chunks);
    expect(encoded.length).toBeLessThan(data.length / 10);
    expect(decompress(encoded).equals(data)).toBe(true);
  });

  it('fails the encoded stream when the source fails', async () => {
    const source = new Readable({ read() {} });
    const encoded = zstdEncode(source);
    source.destroy(new Error('upstream cut'));
    await expect(async () => {
      for await (const _ of encoded) void _;
    }).rejects.toThrow();
  });
});
