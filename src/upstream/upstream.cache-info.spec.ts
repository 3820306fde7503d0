import { parseCacheInfo } from './upstream.cache-info';

describe('parseCacheInfo', () => {
  it('reads StoreDir and Priority', () => {
    expect(parseCacheInfo('StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n')).toEqual({
      storeDir: '/nix/store',
      priority: 40,
    });
  });

  it('leaves the priority unset when the file names none (the caller then uses 50)', () => {
    expect(parseCacheInfo('StoreDir: /nix/store\n').priority).toBeUndefined();
  });

  it('trims both sides and ignores unknown keys and lines without a colon, as Nix does', () => {
    expect(parseCacheInfo('junk\n  Priority :  10  \r\nFoo: bar\nStoreDir:/gnu/store')).toEqual({
      storeDir: '/gnu/store',
      priority: 10,
    });
  });

  it.each(['high', '1.5', '', '12abc'])('ignores a Priority that is not an integer (%p)', (value) => {
    expect(parseCacheInfo(`Priority: ${value}\n`).priority).toBeUndefined();
  });
});
