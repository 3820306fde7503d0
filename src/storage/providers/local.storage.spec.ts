import { createHash } from 'node:crypto';
import { keyOf, listingDirOf, pathOf, shardOf } from './local.layout';

describe('LocalStorage layout', () => {
  it('shards by the first two hex digits of sha256(file name)', () => {
    const name = '1w1fff338fvdw53sqgamddn1b2xgds473pv6y13gizdbqjv4i5p3.nar.xz';
    const expected = createHash('sha256').update(name).digest('hex').slice(0, 2);

    expect(shardOf(name)).toBe(expected);
    expect(pathOf(`nar/${name}`)).toBe(`nar/${expected}/${name}`);
  });

  it('spreads nix32 sha256 names, which all start with 0 or 1, over many shards', () => {
    const names = Array.from({ length: 4096 }, (_, i) => `${i % 2}${i.toString(32).padStart(51, 'a')}.nar.xz`);

    expect(new Set(names.map(shardOf)).size).toBe(256);
  });

  it.each(['top', 'nar/x.nar', 'nar/deeper/x.nar', 'a/b/c/d', 'ab/cd'])('maps %s to a path and back', (key) => {
    expect(keyOf(pathOf(key))).toBe(key);
  });

  it('keeps the logical directories and inserts only the shard', () => {
    const sut = pathOf('a/b/name');

    expect(sut.split('/')).toEqual(['a', 'b', shardOf('name'), 'name']);
  });

  it.each([
    ['a file directly in the root', 'loose'],
    ['a file outside any shard', 'nar/loose'],
    ['a file in the wrong shard', `nar/${shardOf('other') === '00' ? '01' : '00'}/other`],
  ])('does not take %s for a key', (_label, path) => {
    expect(keyOf(path)).toBeNull();
  });

  it.each([
    ['', ''],
    ['nar', ''],
    ['nar/', 'nar/'],
    ['nar/1w', 'nar/'],
    ['a/b/c', 'a/b/'],
  ])('lists prefix %j from directory %j', (prefix, dir) => {
    expect(listingDirOf(prefix)).toBe(dir);
  });
});
