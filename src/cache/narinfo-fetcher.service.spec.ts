import { Logger } from '@nestjs/common';
import { Registry } from 'prom-client';
import { NcpsConfig } from 'src/config/config';
import { NarInfoEntity, NarInfoRepository, NegativeNarInfoRepository, NewNarInfo } from 'src/database';
import { LockPort } from 'src/locking';
import { nix32Encode } from 'src/nix';
import { SigningKeyService } from 'src/signing';
import { StoragePort } from 'src/storage';
import { NarInfoLookup, UpstreamNarInfo, UpstreamService } from 'src/upstream';
import { CacheMetrics } from './cache.metrics';
import { DownloadSlots } from './download/download-slots';
import { NarDownloader } from './download/nar-downloader.service';
import { NarInfoFetcher } from './narinfo-fetcher.service';
import { NegativeNarInfos } from './negative-narinfos';

const HASH = '0'.repeat(32);
const NAR_HASH = `sha256:${nix32Encode(Buffer.alloc(32, 1))}`;

const upstreamAnswer: UpstreamNarInfo = {
  upstream: { url: 'https://up.example', host: 'up.example', priority: 40, healthy: true, verified: true },
  info: {
    storePath: `/nix/store/${HASH}-hello`,
    url: 'nar/abc.nar',
    compression: 'none',
    narHash: NAR_HASH,
    narSize: 100,
    references: [],
    sigs: [],
  },
  narUrl: 'https://up.example/nar/abc.nar',
};
const found: NarInfoLookup = { outcome: 'found', found: upstreamAnswer };
const NEGATIVE_TTL_MS = 60_000;

/** A lock that queues holders of one key, like the local backend. */
function fakeLocks(): LockPort {
  const tails = new Map<string, Promise<unknown>>();
  return {
    withLock: <T>(key: string, _ttl: number, fn: () => Promise<T>): Promise<T> => {
      const run = (tails.get(key) ?? Promise.resolve()).then(() => fn());
      tails.set(
        key,
        run.catch(() => undefined),
      );
      return run;
    },
  } as unknown as LockPort;
}

describe('NarInfoFetcher', () => {
  let rows: Map<string, NewNarInfo>;
  let finishInsert: (error?: Error) => void;
  let narInfos: NarInfoRepository;
  let upstream: { lookupNarInfo: jest.Mock<Promise<NarInfoLookup>, [string]> };
  let downloader: NarDownloader;
  /** The shared table of misses (hash → expiry), and what was written to it. */
  let misses: Map<string, number>;
  let missWrites: jest.Mock;
  let registry: Registry;
  let sut: NarInfoFetcher;
  /** A counter's total, summed over its labels (filtered by `labels`). */
  const counted = async (name: string, labels: Record<string, string> = {}): Promise<number> => {
    const { values } = await registry.getSingleMetric(name)!.get();
    return values.filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l)).reduce((sum, v) => sum + v.value, 0);
  };

  beforeEach(() => {
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'debug').mockImplementation(() => undefined);
    rows = new Map();
    narInfos = {
      findByHash: async (hash: string) => (rows.get(hash) as NarInfoEntity | undefined) ?? null,
      findServedByHash: async (hash: string) => rows.get(hash) ?? null,
      // Each insert waits for the test to let it finish (or fail).
      insertIfAbsent: (row: NewNarInfo) =>
        new Promise<void>((resolve, reject) => {
          finishInsert = (error) => {
            if (error) return reject(error);
            rows.set(row.hash, row);
            resolve();
          };
        }),
    } as unknown as NarInfoRepository;
    upstream = { lookupNarInfo: jest.fn(async (_hash: string) => found) };
    misses = new Map();
    missWrites = jest.fn(async (hash: string, expiresAt: number) => void misses.set(hash, expiresAt));
    const missRows = {
      expiryOf: async (hash: string) => misses.get(hash) ?? null,
      remember: missWrites,
      forget: async (hash: string) => misses.delete(hash),
      sweepExpired: async () => 0,
    } as unknown as NegativeNarInfoRepository;
    const config = { lock: { downloadTtlMs: 1000 }, cache: { negativeTtlMs: NEGATIVE_TTL_MS } } as NcpsConfig;
    // Only its expected rows are used here: nothing is downloaded (every prefetch is dropped).
    downloader = new (NarDownloader as unknown as new (config: NcpsConfig) => NarDownloader)(config);
    const slots = { acquire: async () => null } as unknown as DownloadSlots;
    const signing = {
      keyName: 'ours-1',
      othersOf: (sigs: readonly string[]) => sigs.filter((s) => !s.startsWith('ours-1:')),
    } as SigningKeyService;
    const negatives = new NegativeNarInfos(config, missRows);
    registry = new Registry();
    const metrics = new CacheMetrics(registry);
    const storage = {} as StoragePort;
    const upstreams = upstream as unknown as UpstreamService;
    sut = new NarInfoFetcher(config, fakeLocks(), narInfos, upstreams, signing, storage, downloader, slots, negatives, metrics);
  });

  afterEach(() => jest.restoreAllMocks());

  it('answers once the narinfo is verified, before its row is stored; its NAR can be found meanwhile', async () => {
    const row = await sut.fetch(HASH);
    expect(row).toMatchObject({ hash: HASH, narHash: NAR_HASH, upstreamNarUrl: upstreamAnswer.narUrl });
    expect(rows.has(HASH)).toBe(false);
    expect(downloader.expectedRow(row!.url)).toBe(row);
    await new Promise((r) => setImmediate(r)); // the insert starts once the answer is out
    finishInsert();
    await new Promise((r) => setImmediate(r));
    expect(rows.get(HASH)).toBe(row);
    expect(downloader.expectedRow(row!.url)).toBeUndefined();
    // No download slot free: its NAR prefetch was dropped.
    expect(await counted('ncps_nar_prefetches_total', { result: 'dropped' })).toBe(1);
    expect(await counted('ncps_nar_prefetches_total')).toBe(1);
  });

  it('a second request meanwhile waits for the stored row and gets the same one, without asking upstream again', async () => {
    const first = await sut.fetch(HASH);
    const second = sut.fetch(HASH);
    await new Promise((r) => setImmediate(r));
    finishInsert();
    expect(await second).toBe(first);
    expect(upstream.lookupNarInfo).toHaveBeenCalledTimes(1);
  });

  it('a row that cannot be stored was answered all the same; the next request fetches it again', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const first = await sut.fetch(HASH);
    await new Promise((r) => setImmediate(r));
    finishInsert(new Error('database is down'));
    await new Promise((r) => setImmediate(r));
    expect(warn).toHaveBeenCalledWith(expect.objectContaining({ err: 'database is down' }), 'narinfo answered but not stored');
    expect(downloader.expectedRow(first!.url)).toBeUndefined();
    const again = sut.fetch(HASH);
    const { createdAt: _c, lastAccessedAt: _a, ...content } = first!;
    expect(await again).toMatchObject(content);
    expect(upstream.lookupNarInfo).toHaveBeenCalledTimes(2);
  });

  it('answers null when no upstream could answer, remembering nothing, and throws what the lookup throws', async () => {
    upstream.lookupNarInfo.mockResolvedValueOnce({ outcome: 'unavailable' });
    expect(await sut.fetch(HASH)).toBeNull();
    expect(missWrites).not.toHaveBeenCalled();
    upstream.lookupNarInfo.mockRejectedValueOnce(new Error('invalid store path hash'));
    await expect(sut.fetch(HASH)).rejects.toThrow('invalid store path hash');
    expect(upstream.lookupNarInfo).toHaveBeenCalledTimes(2);
  });

  it('remembers a certain miss and answers the next ones without asking upstream, nor the database', async () => {
    upstream.lookupNarInfo.mockResolvedValue({ outcome: 'absent' });
    const before = Date.now();
    expect(await sut.fetch(HASH)).toBeNull();
    expect(missWrites).toHaveBeenCalledWith(HASH, expect.any(Number));
    expect(misses.get(HASH)).toBeGreaterThanOrEqual(before + NEGATIVE_TTL_MS);
    const lookups = jest.spyOn(narInfos, 'findServedByHash');
    expect(await counted('ncps_negative_cache_hits_total')).toBe(0);
    for (let i = 0; i < 10; i++) expect(await sut.fetch(HASH)).toBeNull();
    expect(upstream.lookupNarInfo).toHaveBeenCalledTimes(1);
    expect(lookups).not.toHaveBeenCalled();
    expect(await counted('ncps_negative_cache_hits_total')).toBe(10);
  });

  it('answers a certain miss before it is written', async () => {
    upstream.lookupNarInfo.mockResolvedValue({ outcome: 'absent' });
    let finishWrite!: () => void;
    missWrites.mockImplementationOnce(() => new Promise<void>((resolve) => (finishWrite = resolve)));
    expect(await sut.fetch(HASH)).toBeNull();
    expect(missWrites).toHaveBeenCalledTimes(1);
    finishWrite();
  });

  it('answers a miss another instance remembered from the database, without asking upstream', async () => {
    misses.set(HASH, Date.now() + 10_000);
    expect(await sut.fetch(HASH)).toBeNull();
    expect(await sut.fetch(HASH)).toBeNull();
    expect(upstream.lookupNarInfo).not.toHaveBeenCalled();
    // The first from the database (under the lock), the second from this instance's memory.
    expect(await counted('ncps_negative_cache_hits_total')).toBe(2);
  });

  it('asks again once a remembered miss expired, and deletes it when the answer is positive', async () => {
    misses.set(HASH, Date.now() - 1);
    const row = sut.fetch(HASH);
    expect(await row).toMatchObject({ hash: HASH });
    await new Promise((r) => setImmediate(r));
    finishInsert();
    await new Promise((r) => setImmediate(r));
    expect(upstream.lookupNarInfo).toHaveBeenCalledTimes(1);
    expect(misses.has(HASH)).toBe(false);
  });

  it('50 concurrent requests for one hash share one upstream lookup and one answer', async () => {
    let release!: (lookup: NarInfoLookup) => void;
    upstream.lookupNarInfo.mockResolvedValue({ outcome: 'unavailable' });
    upstream.lookupNarInfo.mockImplementationOnce(() => new Promise((resolve) => (release = resolve)));
    const requests = Array.from({ length: 50 }, () => sut.fetch(HASH));
    await new Promise((r) => setImmediate(r));
    release({ outcome: 'unavailable' });
    expect(await Promise.all(requests)).toEqual(Array(50).fill(null));
    expect(upstream.lookupNarInfo).toHaveBeenCalledTimes(1);
    // Shared while running only: an unavailable upstream is asked again by the next request.
    expect(await sut.fetch(HASH)).toBeNull();
    expect(upstream.lookupNarInfo).toHaveBeenCalledTimes(2);
  });
});
