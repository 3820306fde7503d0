import { narInfoFixture, narInfoFixtures, nixValues, pathVector } from 'test/fixtures/nix/fixtures';
import { narInfoFingerprint } from './fingerprint';
import { parseNarInfo } from './narinfo';

// The expected fingerprints come from `nix-store -q`; signing.spec.ts shows Nix's signatures cover them.
describe('narInfoFingerprint', () => {
  it.each(narInfoFixtures().map((f) => [`${f.compression}/${f.hash}`, f.text]))('matches Nix for %s', (_, text) => {
    const info = parseNarInfo(text);
    const expected = nixValues.paths.find((p) => p.storePath === info.storePath)?.fingerprint;
    expect(narInfoFingerprint(info)).toBe(expected);
  });

  it('ends in ";" when there are no references', () => {
    expect(narInfoFingerprint(parseNarInfo(narInfoFixture('xz', 'hello.txt')))).toMatch(/;120;$/);
  });

  it('sorts and deduplicates references, as Nix holds them in a set', () => {
    const info = parseNarInfo(narInfoFixture('xz', 'withref'));
    const references = [...info.references].reverse();
    expect(references).not.toEqual(info.references);
    expect(narInfoFingerprint({ ...info, references: [...references, references[0]] })).toBe(pathVector('withref').fingerprint);
  });

  it('renders the NarHash as nix32 whatever encoding it came in', () => {
    const path = pathVector('withref');
    const info = parseNarInfo(narInfoFixture('xz', 'withref'));
    expect(narInfoFingerprint({ ...info, narHash: `sha256:${path.narHashBase16}` })).toBe(path.fingerprint);
    expect(narInfoFingerprint({ ...info, narHash: path.narHashSri })).toBe(path.fingerprint);
  });
});
