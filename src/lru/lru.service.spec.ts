import { Logger } from '@nestjs/common';
import { LockUnavailableError } from 'src/common/errors';
import { NcpsConfig } from 'src/config/config';
import { NarFileRepository, NarInfoRepository } from 'src/database';
import { LockLease, LockPort, TryLockResult } from 'src/locking';
import { PinsService } from 'src/pins';
import { StoragePort } from 'src/storage';
import { UPLOAD_GRACE_MS } from './lru.pass';
import { LruService } from './lru.service';

/** The cache as the LRU sees it, with every write recorded in order. */
class FakeCache {
  readonly narInfos = new Map<string, { id: number; url: string; lastAccessedAt: number; refs: string }>();
  /** Pinned hashes (all in force); the fake walks their closure as PinsService does. */
  readonly pinned = new Set<string>();
  private nextId = 1;
  readonly narFiles = new Map<string, { fileSize: number; lastAccessedAt: number }>();
  readonly objects = new Set<string>();
  readonly calls: string[] = [];
  /** Keys whose NAR lock times out, as when a reader outlasts the wait. */
  readonly busyReaders = new Set<string>();
  lruLockHeld = false;
  readonly leaseAborter = new AbortController();

  /** `refs`: the hashes this narinfo's References name. */
  narInfo(hash: string, url: string, lastAccessedAt: number, refs: string[] = []): this {
    this.narInfos.set(hash, { id: this.nextId++, url, lastAccessedAt, refs: refs.map((r) => `${r}-name`).join(' ') });
    return this;
  }

  private lruOrder() {
    return [...this.narInfos].map(([hash, n]) => ({ hash, ...n })).sort((a, b) => a.lastAccessedAt - b.lastAccessedAt || a.id - b.id);
  }

  narFile(key: string, fileSize: number, lastAccessedAt = 0): this {
    this.narFiles.set(key, { fileSize, lastAccessedAt });
    this.objects.add(key);
    return this;
  }

  readonly narInfoRepository = {
    findLeastRecentlyUsedAfter: async (after: { lastAccessedAt: number; id: number } | null, limit: number) =>
      this.lruOrder()
        .filter((n) => !after || n.lastAccessedAt > after.lastAccessedAt || (n.lastAccessedAt === after.lastAccessedAt && n.id > after.id))
        .slice(0, limit),
    pageReferencesAfterId: async (afterId: number, limit: number) =>
      [...this.narInfos]
        .map(([hash, n]) => ({ id: n.id, hash, refs: n.refs }))
        .filter((n) => n.id > afterId)
        .sort((a, b) => a.id - b.id)
        .slice(0, limit),
    deleteByHash: async (hash: string) => {
      this.calls.push(`delete narinfo ${hash}`);
      return this.narInfos.delete(hash);
    },
    countByUrl: async (url: string) => [...this.narInfos.values()].filter((n) => n.url === url).length,
  } as unknown as NarInfoRepository;

  readonly narFileRepository = {
    sumStoredBytes: async () => [...this.narFiles.values()].reduce((sum, f) => sum + f.fileSize, 0),
    sumStoredBytesAmong: async (keys: string[]) => [...new Set(keys)].reduce((sum, k) => sum + (this.narFiles.get(k)?.fileSize ?? 0), 0),
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

  readonly pins = {
    protection: async () => {
      const closure = new Map<string, string>();
      const walk = (hash: string): void => {
        const n = this.narInfos.get(hash);
        if (!n || closure.has(hash)) return;
        closure.set(hash, n.url);
        for (const ref of n.refs.split(' ').filter(Boolean)) walk(ref.slice(0, 32));
      };
      for (const hash of this.pinned) walk(hash);
      return { pins: this.pinned.size, closure };
    },
  } as unknown as PinsService;

  service(maxSizeBytes: number | undefined): LruService {
    const config = { cache: { maxSizeBytes }, lock: { lruTtlMs: 60_000 } } as unknown as NcpsConfig;
    return new LruService(config, this.narInfoRepository, this.narFileRepository, this.storage, this.locks, this.pins);
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
      .narInfo('old', nar('a'), 1)
      .narFile(nar('a'), 100)
      .narInfo('mid', nar('b'), 2)
      .narFile(nar('b'), 100)
      .narInfo('new', nar('c'), 3)
      .narFile(nar('c'), 100);
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
      .narInfo('old', nar('a'), 1)
      .narFile(nar('a'), 100)
      .narInfo('mid', nar('b'), 2)
      .narFile(nar('b'), 100)
      .narInfo('new', nar('c'), 3)
      .narFile(nar('c'), 100);
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
      .narInfo('other', nar('b'), 3)
      .narFile(nar('b'), 100);

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
      .narInfo('used', nar('used'), 1)
      .narFile(nar('used'), 100, 1)
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
      .narInfo('busy', nar('busy'), 1)
      .narFile(nar('busy'), 100)
      .narInfo('idle', nar('idle'), 2)
      .narFile(nar('idle'), 100)
      .narInfo('new', nar('c'), 3)
      .narFile(nar('c'), 100);
    cache.busyReaders.add('cache:nar:busy');

    const result = await cache.service(200).runOnce();

    expect(result).toMatchObject({ evictedEntries: 2, evictedNarFiles: 1, sizeAfter: 200 });
    expect(cache.objects.has(nar('c'))).toBe(true);
    expect(cache.narInfos.has('busy')).toBe(false);
    expect(cache.objects.has(nar('busy'))).toBe(true);
    expect(logged).toHaveBeenCalledWith({ key: nar('busy') }, 'NAR still being read; left for the next LRU run');
  });

  it('stops between two evictions once the LRU lock is lost', async () => {
    const cache = new FakeCache().narInfo('old', nar('a'), 1).narFile(nar('a'), 100).narInfo('mid', nar('b'), 2).narFile(nar('b'), 100);
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
    const cache = new FakeCache().narInfo('old', nar('a'), 1).narFile(nar('a'), 100).narInfo('mid', nar('b'), 2).narFile(nar('b'), 100);
    const shutdown = new AbortController();
    shutdown.abort();

    const result = await cache.service(0).runOnce(shutdown.signal);

    expect(result).toMatchObject({ ran: true, evictedEntries: 0, interrupted: true });
    expect(cache.calls).toEqual(['lock lru']);
  });

  describe('closures and pins', () => {
    /** A 32-character store path hash made of one letter. */
    const h = (letter: string) => letter.repeat(32);
    const evictedOrder = (cache: FakeCache) =>
      cache.calls.filter((c) => c.startsWith('delete narinfo')).map((c) => c.slice('delete narinfo '.length, 'delete narinfo '.length + 1));
    const left = (cache: FakeCache) => [...cache.narInfos.keys()].map((hash) => hash[0]).sort();

    it('keeps a closure read as a whole (its top read recently) while older unrelated paths go', async () => {
      // c and b were last read long ago, but a, read last, refers to b, which refers to c.
      const cache = new FakeCache()
        .narInfo(h('c'), nar('c'), 1, [h('z')])
        .narFile(nar('c'), 100)
        .narInfo(h('b'), nar('b'), 2, [h('c'), h('b')])
        .narFile(nar('b'), 100)
        .narInfo(h('u'), nar('u'), 3)
        .narFile(nar('u'), 100)
        .narInfo(h('v'), nar('v'), 4)
        .narFile(nar('v'), 100)
        .narInfo(h('a'), nar('a'), 10, [h('b'), h('a')])
        .narFile(nar('a'), 100);

      const result = await cache.service(300).runOnce();

      expect(result).toMatchObject({ evictedEntries: 2, sizeAfter: 300 });
      expect(evictedOrder(cache)).toEqual(['u', 'v']);
      expect(left(cache)).toEqual(['a', 'b', 'c']);
    });

    it('once the top of a closure goes, its dependencies follow it, by their own last access', async () => {
      const cache = new FakeCache()
        .narInfo(h('a'), nar('a'), 1, [h('b')])
        .narFile(nar('a'), 100)
        .narInfo(h('u'), nar('u'), 3)
        .narFile(nar('u'), 100)
        .narInfo(h('b'), nar('b'), 5, [h('c')])
        .narFile(nar('b'), 100)
        .narInfo(h('c'), nar('c'), 6)
        .narFile(nar('c'), 100)
        .narInfo(h('w'), nar('w'), 7)
        .narFile(nar('w'), 100);

      await cache.service(200).runOnce();

      expect(evictedOrder(cache)).toEqual(['a', 'u', 'b']);
      expect(left(cache)).toEqual(['c', 'w']);
    });

    it('reads more candidates when the first ones are all referred to by a path read later', async () => {
      const cache = new FakeCache().narInfo(h('c'), nar('c'), 0).narFile(nar('c'), 1);
      for (let i = 1; i <= 2000; i++) cache.narInfo(`${String(i).padStart(32, '0')}`, nar(`u${i}`), i).narFile(nar(`u${i}`), 1);
      cache.narInfo(h('a'), nar('a'), 3000, [h('c')]).narFile(nar('a'), 1);

      const result = await cache.service(2).runOnce();

      expect(result).toMatchObject({ evictedEntries: 2000, sizeAfter: 2 });
      expect(left(cache)).toEqual(['a', 'c']);
    });

    it('evicts everything else but a pinned closure, and the same closure unpinned', async () => {
      const fill = () =>
        new FakeCache()
          .narInfo(h('a'), nar('a'), 1, [h('b')])
          .narFile(nar('a'), 100)
          .narInfo(h('b'), nar('b'), 2, [h('c')])
          .narFile(nar('b'), 100)
          .narInfo(h('c'), nar('c'), 3)
          .narFile(nar('c'), 100)
          .narInfo(h('u'), nar('u'), 4)
          .narFile(nar('u'), 100)
          .narInfo(h('v'), nar('v'), 5)
          .narFile(nar('v'), 100)
          .narInfo(h('w'), nar('w'), 6)
          .narFile(nar('w'), 100);
      const pinned = fill();
      pinned.pinned.add(h('a'));
      const unpinned = fill();

      await pinned.service(300).runOnce();
      await unpinned.service(300).runOnce();

      expect(left(pinned)).toEqual(['a', 'b', 'c']);
      expect([...pinned.objects].sort()).toEqual([nar('a'), nar('b'), nar('c')]);
      expect(left(unpinned)).toEqual(['u', 'v', 'w']);
    });

    it('warns once when the pinned closures alone exceed the limit, and evicts nothing pinned', async () => {
      const warned = jest.spyOn(Logger.prototype, 'warn').mockImplementation();
      const cache = new FakeCache()
        .narInfo(h('a'), nar('a'), 1, [h('b')])
        .narFile(nar('a'), 100)
        .narInfo(h('b'), nar('b'), 2)
        .narFile(nar('b'), 100)
        .narInfo(h('u'), nar('u'), 3)
        .narFile(nar('u'), 100)
        .narInfo(h('v'), nar('v'), 4)
        .narFile(nar('v'), 100);
      cache.pinned.add(h('a'));

      const result = await cache.service(150).runOnce();

      expect(result).toMatchObject({ evictedEntries: 2, sizeAfter: 200 });
      expect(left(cache)).toEqual(['a', 'b']);
      const about = warned.mock.calls.filter(([, msg]) => String(msg).includes('pinned closures alone exceed'));
      expect(about).toEqual([
        [
          { pins: 1, pinned_entries: 2, pinned_bytes: 200, max_size: 150 },
          'pinned closures alone exceed --cache-max-size; nothing pinned is evicted',
        ],
      ]);
    });

    it('does not let a reference cycle hold the cache over its limit', async () => {
      const cache = new FakeCache()
        .narInfo(h('x'), nar('x'), 1, [h('y')])
        .narFile(nar('x'), 100)
        .narInfo(h('y'), nar('y'), 2, [h('x')])
        .narFile(nar('y'), 100)
        .narInfo(h('u'), nar('u'), 3)
        .narFile(nar('u'), 100);

      await cache.service(100).runOnce();

      expect(evictedOrder(cache)).toEqual(['u', 'x']);
      expect(left(cache)).toEqual(['y']);
    });
  });

  it('refuses to run without a size limit', async () => {
    const sut = new FakeCache().service(undefined);
    await expect(sut.runOnce()).rejects.toThrow('LRU eviction needs --cache-max-size');
  });
});
