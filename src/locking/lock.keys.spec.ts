import { downloadNarInfoKey, downloadNarKey, LRU_LOCK_KEY, lockLogFields, lockType, narKeyHash, narReadKey } from './lock.keys';

describe('lock keys', () => {
  const hash = '0c0kvvfpjd7lb4x3y10dkd1vgfhfb1c4';

  it('builds the documented keys (the backend adds the ncps:lock: prefix)', () => {
    expect(downloadNarKey(hash)).toBe(`download:nar:${hash}`);
    expect(downloadNarInfoKey(hash)).toBe(`download:narinfo:${hash}`);
    expect(LRU_LOCK_KEY).toBe('lru');
    expect(narReadKey(hash)).toBe(`cache:nar:${hash}`);
  });

  it('names a stored NAR by the hash part of its key, whatever its compression', () => {
    expect(narKeyHash(`nar/${hash}.nar.xz`)).toBe(hash);
    expect(narKeyHash(`nar/${hash}.nar`)).toBe(hash);
    expect(narKeyHash(`${hash}.nar.zst`)).toBe(hash);
  });

  it('derives the metric type from the first segment', () => {
    expect(lockType(downloadNarKey(hash))).toBe('download');
    expect(lockType(downloadNarInfoKey(hash))).toBe('download');
    expect(lockType(LRU_LOCK_KEY)).toBe('lru');
    expect(lockType(narReadKey(hash))).toBe('cache');
  });

  it('derives the log fields lock_type and hash', () => {
    expect(lockLogFields(downloadNarKey(hash))).toEqual({ lock_type: 'download:nar', hash });
    expect(lockLogFields(LRU_LOCK_KEY)).toEqual({ lock_type: 'lru' });
  });
});
