import { Logger } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { Registry } from 'prom-client';
import { Clock } from 'src/common/clock';
import { LockUnavailableError } from 'src/common/errors';
import { NCPS_CONFIG } from 'src/config/config.module';
import { NarInfoEntity, NarInfoRepository, NegativeNarInfoRepository, NewNarInfo } from 'src/database';
import { LockPort } from 'src/locking';
import { nix32Encode } from 'src/nix';
import { SigningKeyService } from 'src/signing';
import { Download } from './download/download';
import { NarInfoLookup, UpstreamNarInfo, UpstreamService } from 'src/upstream';
import { testConfig } from 'test/support/config';
import { FakeClock } from 'test/support/fake-clock';
import { CacheMetrics } from './cache.metrics';
import { DownloadSlot, DownloadSlots } from './download/download-slots';
import { NarDownloader } from './download/nar-downloader.service';
import { narKeyFor } from './nar-key';
import { rowFromNarInfo } from './narinfo-record';
import { NarInfoFetcher } from './narinfo-fetcher.service';
import { NegativeNarInfos } from './negative-narinfos';

const HASH = '0'.repeat(32);
const NAR_HASH = `sha256:${nix32Encode(Buffer.alloc(32, 1))}`;
const FILE_HASH = `sha256:${nix32Encode(Buffer.alloc(32, 2))}`;
const NEGATIVE_TTL_MS = 60_000;
const OUR_KEY = 'ours-1';

/** What an upstream answered for HASH: an xz NAR, signed by the upstream and (left over from an earlier copy) by us. */
function upstreamAnswer(verified = true): UpstreamNarInfo {
  return {
    upstream: { url: 'https://up.example', host: 'up.example', priority: 40, healthy: true, verified },
    info: {
      storePath: `/nix/store/${HASH}-hello`,
      url: 'nar/upstream-name.nar.xz',
      compression: 'xz',
      fileHash: FILE_HASH,
      fileSize: 80,
      narHash: NAR_HASH,
      narSize: 100,
      references: [],
      sigs: ['up.example-1:c2ln', `${OUR_KEY}:b2xk`],
    },
    narUrl: 'https://up.example/nar/upstream-name.nar.xz',
  };
}
const found = (verified = true): NarInfoLookup => ({ outcome: 'found', found: upstreamAnswer(verified) });

/** Fakes typed against what NarInfoFetcher uses of each collaborator. */
interface Fakes {
  /** Queues holders of one key, like the local backend; records the keys and TTLs asked for. */
  locks: Pick<LockPort, 'withLock'> & { taken: [string, number][]; failWith?: Error };
  /** Stored rows by hash; each insert waits in `inserts` for the test to finish (or fail) it. */
  narInfos: Pick<NarInfoRepository, 'findByHash' | 'findServedByHash' | 'insertIfAbsent'> & { rows: Map<string, NarInfoEntity> };
  inserts: ((error?: Error) => void)[];
  /** The shared table of misses (hash → expiry). */
  misses: Pick<NegativeNarInfoRepository, 'expiryOf' | 'sweepExpired'> & {
    table: Map<string, number>;
    remember: jest.MockedFunction<NegativeNarInfoRepository['remember']>;
    forget: jest.MockedFunction<NegativeNarInfoRepository['forget']>;
  };
  upstream: { lookupNarInfo: jest.MockedFunction<UpstreamService['lookupNarInfo']> };
  signing: Pick<SigningKeyService, 'othersOf'>;
  /** Rows expected by URL, as NarDownloader keeps them for NAR requests that arrive before the insert. */
  downloader: Pick<NarDownloader, 'expectRow'> & {
    expected: Map<string, NewNarInfo>;
    downloadFor: jest.MockedFunction<NarDownloader['downloadFor']>;
  };
  slots: { acquire: jest.MockedFunction<(priority: 'prefetch') => Promise<DownloadSlot | null>> };
}

function fakes(): Fakes {
  const tails = new Map<string, Promise<unknown>>();
  const rows = new Map<string, NarInfoEntity>();
  const inserts: ((error?: Error) => void)[] = [];
  const table = new Map<string, number>();
  const expected = new Map<string, NewNarInfo>();
  const f: Fakes = {
    locks: {
      taken: [],
      withLock: (key, ttl, fn) => {
        f.locks.taken.push([key, ttl]);
        if (f.locks.failWith) return Promise.reject(f.locks.failWith);
        const run = (tails.get(key) ?? Promise.resolve()).then(() => fn({ signal: new AbortController().signal }));
        tails.set(
          key,
          run.catch(() => undefined),
        );
        return run;
      },
    },
    narInfos: {
      rows,
      findByHash: async (hash) => rows.get(hash) ?? null,
      findServedByHash: async (hash) => rows.get(hash) ?? null,
      insertIfAbsent: (row) =>
        new Promise<void>((resolve, reject) =>
          inserts.push((error) => {
            if (error) return reject(error);
            rows.set(row.hash, { id: rows.size + 1, ...row });
            resolve();
          }),
        ),
    },
    inserts,
    misses: {
      table,
      expiryOf: async (hash) => table.get(hash) ?? null,
      remember: jest.fn(async (hash: string, expiresAt: number) => void table.set(hash, expiresAt)),
      forget: jest.fn(async (hash: string) => table.delete(hash)),
      sweepExpired: async () => 0,
    },
    upstream: { lookupNarInfo: jest.fn(async (_hash: string) => found()) },
    signing: { othersOf: (sigs) => sigs.filter((s) => !s.startsWith(`${OUR_KEY}:`)) },
    downloader: {
      expected,
      expectRow: (row) => {
        expected.set(row.url, row);
        return () => expected.delete(row.url);
      },
      downloadFor: jest.fn(),
    },
    slots: { acquire: jest.fn(async (_priority: 'prefetch'): Promise<DownloadSlot | null> => null) },
  };
  return f;
}

/** Lets queued promise callbacks (answers, inserts, prefetches) run. */
const settle = () => new Promise((r) => setImmediate(r));

describe('NarInfoFetcher', () => {
  let f: Fakes;
  let registry: Registry;
  let clock: FakeClock;
  let warn: jest.SpyInstance;
  let sut: NarInfoFetcher;

  /** A counter's total, summed over its series (filtered by `labels`). */
  const counted = async (name: string, labels: Record<string, string> = {}): Promise<number> => {
    const { values } = await registry.getSingleMetric(name)!.get();
    return values.filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l)).reduce((sum, v) => sum + v.value, 0);
  };

  /** The service as Nest builds it, with its own metrics registry. */
  async function build(flags: Record<string, unknown> = {}): Promise<NarInfoFetcher> {
    registry = new Registry();
    const moduleRef = await Test.createTestingModule({
      providers: [
        NarInfoFetcher,
        NegativeNarInfos,
        { provide: NCPS_CONFIG, useValue: testConfig({ 'cache-lock-download-ttl': '7s', 'cache-negative-ttl': '1m', ...flags }) },
        { provide: LockPort, useValue: f.locks },
        { provide: NarInfoRepository, useValue: f.narInfos },
        { provide: NegativeNarInfoRepository, useValue: f.misses },
        { provide: UpstreamService, useValue: f.upstream },
        { provide: SigningKeyService, useValue: f.signing },
        { provide: NarDownloader, useValue: f.downloader },
        { provide: DownloadSlots, useValue: f.slots },
        { provide: CacheMetrics, useValue: new CacheMetrics(registry) },
        { provide: Clock, useValue: clock },
      ],
    }).compile();
    return moduleRef.get(NarInfoFetcher);
  }

  beforeEach(async () => {
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'debug').mockImplementation(() => undefined);
    warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    f = fakes();
    clock = new FakeClock(1_000_000);
    sut = await build();
  });

  afterEach(() => jest.restoreAllMocks());

  describe('a narinfo found upstream', () => {
    it('is rewritten to our NAR URL, keeps the signatures of others, and remembers where it came from', async () => {
      const row = await sut.fetch(HASH);
      const { info, narUrl } = upstreamAnswer();
      expect(row).toMatchObject({
        hash: HASH,
        storePath: info.storePath,
        url: narKeyFor(HASH, info),
        narHash: NAR_HASH,
        fileHash: FILE_HASH,
        sigs: 'up.example-1:c2ln',
        upstreamUrl: 'https://up.example',
        upstreamNarUrl: narUrl,
        verified: true,
      });
      expect(row!.url).toMatch(/^nar\/[0-9a-z]{52}\.nar\.xz$/);
      expect(f.upstream.lookupNarInfo).toHaveBeenCalledWith(HASH);
      expect(f.locks.taken).toEqual([[`download:narinfo:${HASH}`, 7_000]]);
    });

    it("is dated by the clock's time", async () => {
      expect(await sut.fetch(HASH)).toMatchObject({ createdAt: 1_000_000, lastAccessedAt: 1_000_000 });
    });

    it('from an upstream allowed unsigned, is stored as unverified (never signed by us)', async () => {
      f.upstream.lookupNarInfo.mockResolvedValue(found(false));
      const row = await sut.fetch(HASH);
      expect(row!.verified).toBe(false);
    });

    it('is answered before its row is stored; its NAR can be found meanwhile, and no longer once stored', async () => {
      const row = await sut.fetch(HASH);
      expect(f.narInfos.rows.has(HASH)).toBe(false);
      expect(f.downloader.expected.get(row!.url)).toBe(row);
      await settle(); // the insert starts once the answer is out
      f.inserts[0]();
      await settle();
      expect(f.narInfos.rows.get(HASH)).toMatchObject(row!);
      expect(f.downloader.expected.size).toBe(0);
    });

    it('a second request meanwhile waits for the stored row and gets it, without asking upstream again', async () => {
      const first = await sut.fetch(HASH);
      const second = sut.fetch(HASH);
      await settle();
      f.inserts[0]();
      expect(await second).toMatchObject(first!);
      expect(f.upstream.lookupNarInfo).toHaveBeenCalledTimes(1);
    });

    it('is answered all the same when its row cannot be stored; the next request fetches it again', async () => {
      const first = await sut.fetch(HASH);
      await settle(); // the insert starts once the answer is out
      f.inserts[0](new Error('database is down'));
      await settle();
      expect(warn).toHaveBeenCalledWith(expect.objectContaining({ err: 'database is down' }), 'narinfo answered but not stored');
      expect(f.downloader.expected.size).toBe(0);
      const { createdAt: _c, lastAccessedAt: _a, ...content } = first!;
      expect(await sut.fetch(HASH)).toMatchObject(content);
      expect(f.upstream.lookupNarInfo).toHaveBeenCalledTimes(2);
    });
  });

  describe('a narinfo stored meanwhile', () => {
    it('is read under the lock (another request or instance stored it), without asking upstream', async () => {
      const stored: NarInfoEntity = { id: 9, ...rowFromNarInfo(HASH, { ...upstreamAnswer().info, url: 'nar/stored.nar.xz' }, { now: 1 }) };
      f.narInfos.rows.set(HASH, stored);
      await expect(sut.fetch(HASH)).resolves.toBe(stored);
      expect(f.upstream.lookupNarInfo).not.toHaveBeenCalled();
      expect(f.inserts).toHaveLength(0);
    });
  });

  describe('a narinfo no upstream has', () => {
    it('is remembered when every upstream said so, and answered from memory next time: no upstream, no database', async () => {
      f.upstream.lookupNarInfo.mockResolvedValue({ outcome: 'absent' });
      const before = clock.now();
      expect(await sut.fetch(HASH)).toBeNull();
      expect(f.misses.remember).toHaveBeenCalledWith(HASH, expect.any(Number));
      expect(f.misses.table.get(HASH)).toBeGreaterThanOrEqual(before + NEGATIVE_TTL_MS);
      expect(f.inserts).toHaveLength(0);
      expect(await counted('ncps_negative_cache_hits_total')).toBe(0);
      const lookups = jest.spyOn(f.narInfos, 'findServedByHash');
      for (let i = 0; i < 10; i++) expect(await sut.fetch(HASH)).toBeNull();
      expect(f.upstream.lookupNarInfo).toHaveBeenCalledTimes(1);
      expect(lookups).not.toHaveBeenCalled();
      expect(f.locks.taken).toHaveLength(1);
      expect(await counted('ncps_negative_cache_hits_total')).toBe(10);
    });

    it('is asked upstream for again once its TTL is up, not before', async () => {
      f.upstream.lookupNarInfo.mockResolvedValue({ outcome: 'absent' });
      expect(await sut.fetch(HASH)).toBeNull();
      await clock.advance(NEGATIVE_TTL_MS - 1);
      expect(await sut.fetch(HASH)).toBeNull();
      expect(f.upstream.lookupNarInfo).toHaveBeenCalledTimes(1);

      await clock.advance(1);
      expect(await sut.fetch(HASH)).toBeNull();
      expect(f.upstream.lookupNarInfo).toHaveBeenCalledTimes(2);
    });

    it('is answered before the miss is written', async () => {
      f.upstream.lookupNarInfo.mockResolvedValue({ outcome: 'absent' });
      let finishWrite!: () => void;
      f.misses.remember.mockImplementationOnce(() => new Promise<void>((resolve) => (finishWrite = resolve)));
      expect(await sut.fetch(HASH)).toBeNull();
      expect(f.misses.remember).toHaveBeenCalledTimes(1);
      finishWrite();
    });

    it('is not remembered when the negative cache is off', async () => {
      sut = await build({ 'cache-negative-ttl': '0s' });
      f.upstream.lookupNarInfo.mockResolvedValue({ outcome: 'absent' });
      expect(await sut.fetch(HASH)).toBeNull();
      expect(await sut.fetch(HASH)).toBeNull();
      expect(f.misses.remember).not.toHaveBeenCalled();
      expect(f.upstream.lookupNarInfo).toHaveBeenCalledTimes(2);
    });

    it('is answered from what another instance remembered in the database, without asking upstream', async () => {
      f.misses.table.set(HASH, clock.now() + 10_000);
      expect(await sut.fetch(HASH)).toBeNull();
      expect(await sut.fetch(HASH)).toBeNull();
      expect(f.upstream.lookupNarInfo).not.toHaveBeenCalled();
      // The first from the database (under the lock), the second from this instance's memory.
      expect(f.locks.taken).toHaveLength(1);
      expect(await counted('ncps_negative_cache_hits_total')).toBe(2);
    });

    it('is asked for again once its remembered miss expired, which a positive answer deletes', async () => {
      f.misses.table.set(HASH, clock.now() - 1);
      expect(await sut.fetch(HASH)).toMatchObject({ hash: HASH });
      await settle(); // the insert starts once the answer is out
      f.inserts[0]();
      await settle();
      expect(f.upstream.lookupNarInfo).toHaveBeenCalledTimes(1);
      expect(f.misses.forget).toHaveBeenCalledWith(HASH);
      expect(f.misses.table.has(HASH)).toBe(false);
    });

    it('keeps its expired miss when deleting it fails, and says so', async () => {
      f.misses.table.set(HASH, clock.now() - 1);
      f.misses.forget.mockRejectedValueOnce(new Error('database is down'));
      expect(await sut.fetch(HASH)).toMatchObject({ hash: HASH });
      await settle(); // the insert starts once the answer is out
      f.inserts[0]();
      await settle();
      expect(warn).toHaveBeenCalledWith(expect.objectContaining({ err: 'database is down' }), 'expired narinfo miss not deleted');
    });
  });

  describe('upstreams that cannot answer', () => {
    it('give null, remembering nothing (an unhealthy or failing upstream may have it)', async () => {
      f.upstream.lookupNarInfo.mockResolvedValue({ outcome: 'unavailable' });
      expect(await sut.fetch(HASH)).toBeNull();
      expect(await sut.fetch(HASH)).toBeNull();
      expect(f.misses.remember).not.toHaveBeenCalled();
      expect(f.upstream.lookupNarInfo).toHaveBeenCalledTimes(2);
    });

    it('throw what the lookup throws', async () => {
      f.upstream.lookupNarInfo.mockRejectedValueOnce(new Error('invalid store path hash'));
      await expect(sut.fetch(HASH)).rejects.toThrow('invalid store path hash');
    });

    it('a lock backend that is down fails the request, and the next one tries again', async () => {
      f.locks.failWith = new LockUnavailableError('redis is down');
      await expect(sut.fetch(HASH)).rejects.toThrow(LockUnavailableError);
      expect(f.upstream.lookupNarInfo).not.toHaveBeenCalled();
      f.locks.failWith = undefined;
      await expect(sut.fetch(HASH)).resolves.toMatchObject({ hash: HASH });
    });
  });

  describe('concurrent requests', () => {
    it('50 requests for one hash share one upstream lookup and one answer, while it runs only', async () => {
      let release!: (lookup: NarInfoLookup) => void;
      f.upstream.lookupNarInfo.mockResolvedValue({ outcome: 'unavailable' });
      f.upstream.lookupNarInfo.mockImplementationOnce(() => new Promise((resolve) => (release = resolve)));
      const requests = Array.from({ length: 50 }, () => sut.fetch(HASH));
      await settle();
      release({ outcome: 'unavailable' });
      expect(await Promise.all(requests)).toEqual(Array(50).fill(null));
      expect(f.upstream.lookupNarInfo).toHaveBeenCalledTimes(1);
      expect(await sut.fetch(HASH)).toBeNull();
      expect(f.upstream.lookupNarInfo).toHaveBeenCalledTimes(2);
    });
  });

  describe('the NAR prefetch a fetched narinfo starts', () => {
    const slot = (): DownloadSlot & { release: jest.Mock } => ({ release: jest.fn() });

    it('is dropped when no download slot is free', async () => {
      await sut.fetch(HASH);
      await settle();
      expect(f.slots.acquire).toHaveBeenCalledWith('prefetch');
      expect(f.downloader.downloadFor).not.toHaveBeenCalled();
      expect(await counted('ncps_nar_prefetches_total', { result: 'dropped' })).toBe(1);
      expect(await counted('ncps_nar_prefetches_total')).toBe(1);
    });

    /** What downloadFor hands back: a download whose `ready` the test settles. */
    const pending = () => {
      let settle!: (outcome: Partial<Pick<Download, 'foundInStorage' | 'state'>>) => void;
      const download = { foundInStorage: false, state: 'running' } as Download;
      (download as { ready: Promise<void> }).ready = new Promise<void>((resolve) => {
        settle = (outcome) => resolve(void Object.assign(download, outcome));
      });
      return { download, settle };
    };

    it('downloads the NAR in the slot it got, without asking storage first, as fresh from the upstream, and counts it once started', async () => {
      const held = slot();
      f.slots.acquire.mockResolvedValue(held);
      const { download, settle: started } = pending();
      f.downloader.downloadFor.mockReturnValue({ download, joined: false });
      const row = await sut.fetch(HASH);
      await settle();
      expect(f.downloader.downloadFor).toHaveBeenCalledWith(row, held, { fresh: true });
      expect(held.release).not.toHaveBeenCalled(); // the download releases it
      expect(await counted('ncps_nar_prefetches_total')).toBe(0);
      started({});
      await settle();
      expect(await counted('ncps_nar_prefetches_total', { result: 'started' })).toBe(1);
      expect(await counted('ncps_nar_prefetches_total')).toBe(1);
    });

    it('does not call a row the lock found stored fresh: its NAR may be stored too', async () => {
      const held = slot();
      f.slots.acquire.mockResolvedValue(held);
      f.downloader.downloadFor.mockReturnValue({ download: pending().download, joined: false });
      const stored: NarInfoEntity = { id: 9, ...rowFromNarInfo(HASH, { ...upstreamAnswer().info, url: 'nar/stored.nar.xz' }, { now: 1 }) };
      f.narInfos.rows.set(HASH, stored);
      await sut.fetch(HASH);
      await settle();
      expect(f.upstream.lookupNarInfo).not.toHaveBeenCalled();
      expect(f.downloader.downloadFor).toHaveBeenCalledWith(stored, held, { fresh: false });
    });

    it.each([
      ['already_stored', { foundInStorage: true, state: 'done' as const }],
      ['failed', { state: 'failed' as const }],
    ])('counts %s when its download says so before its first byte', async (result, outcome) => {
      f.slots.acquire.mockResolvedValue(slot());
      const { download, settle: known } = pending();
      f.downloader.downloadFor.mockReturnValue({ download, joined: false });
      await sut.fetch(HASH);
      known(outcome);
      await settle();
      expect(await counted('ncps_nar_prefetches_total', { result })).toBe(1);
      expect(await counted('ncps_nar_prefetches_total')).toBe(1);
    });

    it('gives its slot back and says so when the download cannot start; the answer stands', async () => {
      const held = slot();
      f.slots.acquire.mockResolvedValue(held);
      f.downloader.downloadFor.mockImplementation(() => {
        throw new Error('s3 is down');
      });
      await expect(sut.fetch(HASH)).resolves.toMatchObject({ hash: HASH });
      await settle();
      expect(held.release).toHaveBeenCalledTimes(1);
      expect(warn).toHaveBeenCalledWith(expect.objectContaining({ hash: HASH, err: 's3 is down' }), 'NAR prefetch did not start');
      expect(await counted('ncps_nar_prefetches_total', { result: 'failed' })).toBe(1);
    });

    it('is not started for a miss', async () => {
      f.upstream.lookupNarInfo.mockResolvedValue({ outcome: 'absent' });
      await sut.fetch(HASH);
      await settle();
      expect(f.slots.acquire).not.toHaveBeenCalled();
    });
  });
});
