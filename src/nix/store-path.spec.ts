import { narInfoFixtures, nixValues } from 'test/fixtures/nix/fixtures';
import { NixFormatError } from './errors';
import { isStorePath, isStorePathBaseName, storePathHash } from './store-path';

const HASH = 'i9pmrzmpshapij2kin22pff6fc2adavx';

describe('storePathHash', () => {
  it('gives the hash Nix names the narinfo after', () => {
    for (const { hash, text } of narInfoFixtures()) {
      const storePath = /^StorePath: (.*)$/m.exec(text)?.[1] ?? '';
      expect(storePathHash(storePath)).toBe(hash);
    }
  });

  it('throws on something that is not a store path', () => {
    expect(() => storePathHash(`/tmp/${HASH}-x`)).toThrow(NixFormatError);
  });
});

describe('isStorePath', () => {
  it('accepts the store paths, references and derivers Nix reported', () => {
    for (const path of nixValues.paths) {
      expect(isStorePath(path.storePath)).toBe(true);
      for (const ref of path.references) expect(isStorePath(ref)).toBe(true);
    }
    expect(isStorePath(nixValues.paths.map((p) => p.deriver).find((d) => d.endsWith('.drv')) ?? '')).toBe(true);
  });

  it('accepts every character Nix allows in names, up to 211 of them', () => {
    expect(isStorePath(`/nix/store/${HASH}-aZ09+-._?=`)).toBe(true);
    expect(isStorePath(`/nix/store/${HASH}-${'a'.repeat(211)}`)).toBe(true);
  });

  it.each([
    ['another store directory', `/gnu/store/${HASH}-x`],
    ['a trailing slash', `/nix/store/${HASH}-x/`],
    ['no name', `/nix/store/${HASH}`],
    ['an empty name', `/nix/store/${HASH}-`],
    ['a name longer than 211', `/nix/store/${HASH}-${'a'.repeat(212)}`],
    ['a slash in the name', `/nix/store/${HASH}-a/b`],
    ['a space in the name', `/nix/store/${HASH}-a b`],
    ['a short hash', `/nix/store/${HASH.slice(1)}-x`],
    ['a hash with a letter Nix never uses', `/nix/store/e${HASH.slice(1)}-x`],
  ])('rejects %s', (_, text) => {
    expect(isStorePath(text)).toBe(false);
  });
});

describe('isStorePathBaseName', () => {
  it('takes the base name without the store directory', () => {
    expect(isStorePathBaseName(`${HASH}-hello.txt`)).toBe(true);
    expect(isStorePathBaseName(`/nix/store/${HASH}-hello.txt`)).toBe(false);
  });
});
