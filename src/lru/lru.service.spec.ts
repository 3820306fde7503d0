import { Logger } from '@nestjs/common';
import { LockUnavailableError } from 'src/common/errors';
import { NcpsConfig } from 'src/config/config';
import { NarFileRepository, NarInfoRepository } from 'src/database';
import { LockLease, LockPort, TryLockResult } from 'src/locking';
import { StoragePort } from 'src/storage';
import { UPLOAD_GRACE_MS } from './lru.pass';
import { LruService } from './lru.service';

/** The cache as the LRU sees it, with every write recorded in order. */
class FakeCache {
  readonly narInfos = new Map<string, { url: string; lastAccessedAt: number }>();
  readonly narFiles = new Map<string, { fileSize: number; lastAccessedAt: number }>();
  readonly objects = new Set<string>();
  readonly calls: string[] = [];
  /** Keys whose NAR lock times out, as when a reader outlasts the wait. */
  readonly busyReaders = new Set<string>();
  lruLockHeld = false;
  readonly leaseAborter = new AbortController();

  narInfo(hash: string, url: string, lastAccessedAt: number): this {
    this.narInfos.set(hash, { url, lastAccessedAt });
    return this;
  }

  narFile(key: string, fileSize: number, lastAccessedAt = 0): this {
    this.narFiles.set(key, { fileSize, lastAccessedAt });
    this.objects.add(key);
    return this;
  }

  readonly narInfoRepository = {
    findLeastRecentlyUsed: async (limit: number) =>
      [...this.narInfos]
        .sort(([, a], [, b]) => a.lastAccessedAt - b.lastAccessedAt)
        .slice(0, limit)
        .map(([hash, n]) => ({ hash, ...n })),
    deleteByHash: async (hash: string) => {
      this.calls.push(`delete narinfo ${hash}`);
      return this.narInfos.delete(hash);
    },
    countByUrl: async (url: string) => [...this.narInfos.values()].filter((n) => n.url === url).length,
  } as unknown as NarInfoRepository;

  readonly narFileRepository = {
    sumStoredBytes: async () => [...this.narFiles.values()].reduce((sum, f) => sum + f.fileSize, 0),
    findUnreferenced: async (limit: number) =>
      [...this.narFiles]
        .filter(([key]) => ![...this.narInfos.values()].some((n) => n.url === key))
        .sort(([, a], [, b]) => a.lastAccessedAt - b.lastAccessedAt)
        .slice(0, limit)
        .map(([key, f]) => ({ key, ...f })),
    findByKey: async (key: string) => {
      const file = this.narFiles.get(key);
      return file ? { key, ...file } : null;
    },
    deleteByKey: async (key: string) => {
      this.calls.push(`delete nar_files row ${key}`);
      return this.narFiles.delete(key);
    },
  } as unknown as NarFileRepository;

  readonly storage = {
    delete: async (key: string) => {
      this.calls.push(`delete object ${key}`);
      return this.objects.delete(key);
    },
  } as unknown as StoragePort;

  readonly locks = {
    tryWithLock: async <T>(key: string, _ttl: number, fn: (lease: LockLease) => Promise<T>): Promise<TryLockResult<T>> => {
      if (this.lruLockHeld) return { acquired: false };
      this.calls.push(`lock ${key}`);
      return { acquired: true, value: await fn({ signal: this.leaseAborter.signal }) };
    },
    withLock: async <T>(key: string, _ttl: number, fn: (lease: LockLease) => Promise<T>): Promise<T> => {
      if (this.busyReaders.has(key)) throw new LockUnavailableError(`timed out waiting for lock ${key}`, 'timeout');
      this.calls.push(`lock ${key}`);
      try {
        return await fn({ signal: new AbortController().signal });
      } finally {
        this.calls.push(`unlock ${key}`);
      }
    },
  } as unknown as LockPort;

  service(maxSizeBytes: number | undefined): LruService {
    const config = { cache: { maxSizeBytes }, lock: { lruTtlMs: 60_000 } } as unknown as NcpsConfig;
    return new LruService(config, this.narInfoRepository, this.narFileRepository, this.storage, this.locks);
  }
}

const nar = (name: string) => `nar/${name}.nar.xz`;

describe('LruService', () => {
  let logged: jest.SpyInstance;

  beforeEach(() => {
    logged = jest.spyOn(Logger.prototype, 'log').mockImplementation();
    jest.spyOn(Logger.prototype, 'warn').mockImplementation();
  });

  afterEach(() => jest.restoreAllMocks());

  it('evicts the least recently used narinfos and their NARs until the size is within the limit', async () => {
    const cache = new FakeCache()
      .narInfo('old', nar('a'), 1).narFile(nar('a'), 100)
      .narInfo('mid', nar('b'), 2).narFile(nar('b'), 100)
      .narInfo('new', nar('c'), 3).narFile(nar('c'), 100);
    const sut = cache.service(150);

    const result = await sut.runOnce();

    expect(result).toEqual({
      ran: true,
      evictedEntries: 2,
      evictedNarFiles: 2,
      evictedBytes: 200,
      sizeBefore: 300,
      sizeAfter: 100,
      interrupted: false,
    });
    expect([...cache.narInfos.keys()]).toEqual(['new']);
    expect([...cache.objects]).toEqual([nar('c')]);
  });

  it('stops as soon as the size is within the limit', async () => {
    const cache = new FakeCache()
      .narInfo('old', nar('a'), 1).narFile(nar('a'), 100)
      .narInfo('mid', nar('b'), 2).narFile(nar('b'), 100)
      .narInfo('new', nar('c'), 3).narFile(nar('c'), 100);
    const sut = cache.service(200);

    await sut.runOnce();

    expect([...cache.narInfos.keys()]).toEqual(['mid', 'new']);
    expect([...cache.objects]).toEqual([nar('b'), nar('c')]);
  });

  it('keeps a NAR while another narinfo uses it, and counts it once when the last one goes', async () => {
    const cache = new FakeCache()
      .narInfo('first', nar('shared'), 1)
      .narInfo('second', nar('shared'), 2)
      .narFile(nar('shared'), 100)
      .narInfo('other', nar('b'), 3).narFile(nar('b'), 100);

    const partial = await cache.service(199).runOnce();
    expect(partial).toMatchObject({ evictedEntries: 2, evictedNarFiles: 1, evictedBytes: 100, sizeAfter: 100 });
    expect([...cache.objects]).toEqual([nar('b')]);
    expect(cache.calls.filter((c) => c.includes('shared'))).toEqual([
      'lock cache:nar:shared',
      `delete nar_files row ${nar('shared')}`,
      `delete object ${nar('shared')}`,
      'unlock cache:nar:shared',
    ]);
  });

  it('deletes the narinfo, then the NAR row, then the stored object, under the NAR lock', async () => {
    const cache = new FakeCache().narInfo('old', nar('a'), 1).narFile(nar('a'), 100);

    await cache.service(50).runOnce();

    expect(cache.calls).toEqual([
      'lock lru',
      'delete narinfo old',
      'lock cache:nar:a',
      `delete nar_files row ${nar('a')}`,
      `delete object ${nar('a')}`,
      'unlock cache:nar:a',
    ]);
  });

  it('deletes nothing and says so when another instance holds the LRU lock', async () => {
    const cache = new FakeCache().narInfo('old', nar('a'), 1).narFile(nar('a'), 100);
    cache.lruLockHeld = true;
    const sut = cache.service(50);

    await expect(sut.runOnce()).resolves.toEqual({ ran: false });

    expect(cache.calls).toEqual([]);
    expect(cache.narInfos.size).toBe(1);
    expect(logged).toHaveBeenCalledWith('another instance is running LRU');
  });

  it('deletes nothing when the size is within the limit, and still reports the run', async () => {
    const cache = new FakeCache().narInfo('old', nar('a'), 1).narFile(nar('a'), 100);

    const result = await cache.service(100).runOnce();

    expect(result).toMatchObject({ ran: true, evictedEntries: 0, evictedBytes: 0, sizeBefore: 100, sizeAfter: 100 });
    expect(cache.calls).toEqual(['lock lru']);
    expect(logged).toHaveBeenCalledWith(
      expect.objectContaining({ evicted_entries: 0, duration_ms: expect.any(Number) }),
      'LRU run finished',
    );
  });

  it('evicts NAR files no narinfo points at first, oldest first, but not fresh uploads still awaiting their narinfo', async () => {
    const now = Date.now();
    const cache = new FakeCache()
      .narInfo('used', nar('used'), 1).narFile(nar('used'), 100, 1)
      .narFile(nar('orphan-new'), 100, now - UPLOAD_GRACE_MS - 1_000)
      .narFile(nar('orphan-old'), 100, now - UPLOAD_GRACE_MS - 2_000)
      .narFile(nar('uploading'), 100, now);

    const result = await cache.service(250).runOnce();

    expect(result).toMatchObject({ evictedEntries: 0, evictedNarFiles: 2, sizeAfter: 200 });
    expect(cache.calls.filter((c) => c.startsWith('delete object'))).toEqual([
      `delete object ${nar('orphan-old')}`,
      `delete object ${nar('orphan-new')}`,
    ]);
    expect([...cache.objects]).toEqual([nar('used'), nar('uploading')]);
  });

  it('leaves a NAR whose reader outlasts the wait for the next run and goes on with the others', async () => {
    const cache = new FakeCache()
      .narInfo('busy', nar('busy'), 1).narFile(nar('busy'), 100)
      .narInfo('idle', nar('idle'), 2).narFile(nar('idle'), 100)
      .narInfo('new', nar('c'), 3).narFile(nar('c'), 100);
    cache.busyReaders.add('cache:nar:busy');

    const result = await cache.service(200).runOnce();

    expect(result).toMatchObject({ evictedEntries: 2, evictedNarFiles: 1, sizeAfter: 200 });
    expect(cache.objects.has(nar('c'))).toBe(true);
    expect(cache.narInfos.has('busy')).toBe(false);
    expect(cache.objects.has(nar('busy'))).toBe(true);
    expect(logged).toHaveBeenCalledWith({ key: nar('busy') }, 'NAR still being read; left for the next LRU run');
  });

  it('stops between two evictions once the LRU lock is lost', async () => {
    const cache = new FakeCache()
      .narInfo('old', nar('a'), 1).narFile(nar('a'), 100)
      .narInfo('mid', nar('b'), 2).narFile(nar('b'), 100);
    const storageDelete = cache.storage.delete.bind(cache.storage);
    cache.storage.delete = async (key) => {
      cache.leaseAborter.abort();
      return storageDelete(key);
    };

    const result = await cache.service(0).runOnce();

    expect(result).toMatchObject({ ran: true, evictedEntries: 1, interrupted: true });
    expect(cache.narInfos.has('mid')).toBe(true);
  });

  it('stops between two evictions when the caller aborts (shutdown)', async () => {
    const cache = new FakeCache()
      .narInfo('old', nar('a'), 1).narFile(nar('a'), 100)
      .narInfo('mid', nar('b'), 2).narFile(nar('b'), 100);
    const shutdown = new AbortController();
    shutdown.abort();

    const result = await cache.service(0).runOnce(shutdown.signal);

    expect(result).toMatchObject({ ran: true, evictedEntries: 0, interrupted: true });
    expect(cache.calls).toEqual(['lock lru']);
  });

  it('refuses to run without a size limit', async () => {
    const sut = new FakeCache().service(undefined);
    await expect(sut.runOnce()).rejects.toThrow('LRU eviction needs --cache-max-size');
  });
});
