import { createHash } from 'node:crypto';
import { nixValues, readNixFixture } from 'test/fixtures/nix/fixtures';
import { NixFormatError } from './errors';
import { isNarHashPart, isStorePathHash, NixHash, parseHash } from './hash';

const sha256Vectors = nixValues.hashes.filter((h) => h.algo === 'sha256');
const otherVectors = nixValues.hashes.filter((h) => h.algo !== 'sha256');

describe('parseHash', () => {
  describe.each(sha256Vectors)('sha256 $base16', ({ base16, nix32, base64, sri }) => {
    it.each([
      ['nix32', `sha256:${nix32}`],
      ['base16', `sha256:${base16}`],
      ['upper-case base16', `sha256:${base16.toUpperCase()}`],
      ['base64', `sha256:${base64}`],
      ['SRI', sri],
    ])('reads %s and renders what Nix prints', (_, text) => {
      const sut = parseHash(text);
      expect(sut.algo).toBe('sha256');
      expect(sut.digest.toString('hex')).toBe(base16);
      expect(sut.toNix32String()).toBe(`sha256:${nix32}`);
      expect(sut.toSri()).toBe(sri);
    });
  });

  it('reads the NAR hashes of real paths in every encoding Nix prints', () => {
    for (const path of nixValues.paths) {
      expect(parseHash(path.narHashSri).toNix32String()).toBe(path.narHash);
      expect(parseHash(`sha256:${path.narHashBase16}`).toNix32String()).toBe(path.narHash);
    }
  });

  it.each(otherVectors.map((h) => [h.algo, h.sri]))('rejects %s', (algo, sri) => {
    expect(() => parseHash(sri)).toThrow(`unsupported hash algorithm '${algo}'`);
  });

  const { nix32, base16, base64 } = sha256Vectors[1];
  it.each([
    ['no algorithm', nix32],
    ['an empty digest', 'sha256:'],
    ['a nix32 digest with a bad letter', `sha256:${nix32.slice(0, -1)}e`],
    ['a digest of the wrong length', `sha256:${nix32.slice(1)}`],
    ['non-hex base16', `sha256:${base16.slice(0, -1)}g`],
    ['base64 without padding', `sha256:${base64.slice(0, -1)}a`],
    ['SRI with a base16 digest', `sha256-${base16}`],
    ['SRI of too few bytes', `sha256-${Buffer.alloc(31).toString('base64')}`],
    ['trailing whitespace', `sha256:${nix32} `],
  ])('rejects %s', (_, text) => {
    expect(() => parseHash(text)).toThrow(NixFormatError);
  });

  it('refuses a digest of the wrong size', () => {
    expect(() => new NixHash('sha256', Buffer.alloc(20))).toThrow(NixFormatError);
  });

  it('hashes a NAR to the NarHash Nix recorded', () => {
    const nar = readNixFixture(nixValues.nar.file);
    const sut = new NixHash('sha256', createHash('sha256').update(nar).digest());
    expect(sut.toNix32String()).toBe(nixValues.nar.narHash);
  });
});

describe('isStorePathHash', () => {
  it('accepts the hash part of real store paths', () => {
    for (const { storePath } of nixValues.paths) {
      expect(isStorePathHash(storePath.slice('/nix/store/'.length, '/nix/store/'.length + 32))).toBe(true);
    }
  });

  const hash = nixValues.paths[0].storePath.slice('/nix/store/'.length, '/nix/store/'.length + 32);
  it.each([
    ['too short', hash.slice(1)],
    ['too long', `${hash}0`],
    ['a letter Nix never uses', `${hash.slice(1)}e`],
    ['upper case', hash.toUpperCase()],
    ['a path traversal', `../../${hash.slice(6)}`],
  ])('rejects %s', (_, text) => {
    expect(isStorePathHash(text)).toBe(false);
  });
});

describe('isNarHashPart', () => {
  it('accepts nix32 and base16 NAR hashes', () => {
    for (const path of nixValues.paths) {
      expect(isNarHashPart(path.narHash.slice('sha256:'.length))).toBe(true);
      expect(isNarHashPart(path.narHashBase16)).toBe(true);
    }
  });

  const { narHash, narHashBase16 } = nixValues.paths[0];
  it.each([
    ['the algorithm prefix', narHash],
    ['51 nix32 characters', narHash.slice('sha256:'.length + 1)],
    ['upper-case hex', narHashBase16.toUpperCase()],
    ['a store path hash', nixValues.paths[0].storePath.slice(11, 43)],
    ['a path traversal', `../${narHashBase16.slice(3)}`],
  ])('rejects %s', (_, text) => {
    expect(isNarHashPart(text)).toBe(false);
  });
});
