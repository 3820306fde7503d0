import { nixValues } from 'test/fixtures/nix/fixtures';
import { NixFormatError } from './errors';
import { nix32Decode, nix32Encode, nix32Length } from './nix32';

describe('nix32', () => {
  // md5, sha1, sha256 and sha512 digests as printed by `nix hash to-base32`: 16, 20, 32 and 64 bytes.
  describe.each(nixValues.hashes)('$algo $base16', ({ base16, nix32 }) => {
    it('encodes like Nix', () => {
      expect(nix32Encode(Buffer.from(base16, 'hex'))).toBe(nix32);
    });

    it('decodes what Nix printed', () => {
      expect(nix32Decode(nix32).toString('hex')).toBe(base16);
    });
  });

  it.each([
    [16, 26],
    [20, 32],
    [32, 52],
    [64, 103],
  ])('has the length Nix prints for %i bytes', (bytes, chars) => {
    expect(nix32Length(bytes)).toBe(chars);
    expect(nixValues.hashes.some((h) => h.base16.length === 2 * bytes && h.nix32.length === chars)).toBe(true);
  });

  it('maps the empty string to no bytes', () => {
    expect(nix32Encode(Buffer.alloc(0))).toBe('');
    expect(nix32Decode('')).toEqual(Buffer.alloc(0));
  });

  it.each([
    ['a letter outside the alphabet', `e${'0'.repeat(51)}`],
    ['an upper-case letter', `A${'0'.repeat(51)}`],
    ['a length no byte count produces', '0'.repeat(51)],
    ['bits beyond 32 bytes', `2${'0'.repeat(51)}`],
  ])('rejects %s', (_, text) => {
    expect(() => nix32Decode(text)).toThrow(NixFormatError);
  });
});
