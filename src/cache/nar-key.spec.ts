import { createHash } from 'node:crypto';
import { nix32Encode } from 'src/nix';
import { narKeyFor } from './nar-key';
import { parseNarName } from './nar-name';

const sha = (text: string) => nix32Encode(createHash('sha256').update(text).digest());
const pathA = '0'.repeat(32);
const pathB = '1'.repeat(32);

describe('narKeyFor', () => {
  const narHash = `sha256:${sha('nar')}`;
  const fileHash = `sha256:${sha('file')}`;

  it('names a compressed NAR by its FileHash, as Nix does', () => {
    expect(narKeyFor(pathA, { compression: 'xz', narHash, fileHash })).toBe(`nar/${sha('file')}.nar.xz`);
  });

  it('names an uncompressed NAR by its NarHash, whatever FileHash the upstream claims', () => {
    expect(narKeyFor(pathA, { compression: 'none', narHash, fileHash })).toBe(`nar/${sha('nar')}.nar`);
    expect(narKeyFor(pathA, { compression: 'none', narHash })).toBe(`nar/${sha('nar')}.nar`);
  });

  it('never names a compressed NAR without FileHash by its NarHash', () => {
    const sut = narKeyFor(pathA, { compression: 'xz', narHash });
    expect(sut).not.toContain(sha('nar'));
    expect(sut).toMatch(/^nar\/[0-9a-z]{52}\.nar\.xz$/);
    expect(parseNarName(sut.slice('nar/'.length)).key).toBe(sut);
  });

  it('gives every narinfo its own derived key, stable across calls', () => {
    const a = narKeyFor(pathA, { compression: 'xz', narHash });
    expect(narKeyFor(pathA, { compression: 'xz', narHash })).toBe(a);
    expect(narKeyFor(pathB, { compression: 'xz', narHash })).not.toBe(a);
    expect(narKeyFor(pathA, { compression: 'xz', narHash: `sha256:${sha('other')}` })).not.toBe(a);
    expect(narKeyFor(pathA, { compression: 'zstd', narHash }).replace(/\.zst$/, '')).not.toBe(a.replace(/\.xz$/, ''));
  });
});
