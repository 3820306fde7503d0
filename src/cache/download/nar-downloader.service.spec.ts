import { Test } from '@nestjs/testing';
import { Readable } from 'node:stream';
import { Registry } from 'prom-client';
import { InstanceIdentity } from 'src/cluster';
import { Clock } from 'src/common/clock';
import { NCPS_CONFIG } from 'src/config/config.module';
import { NarDownloadRepository, NarFileRepository, NewNarInfo } from 'src/database';
import { LockPort } from 'src/locking';
import { StoragePort } from 'src/storage';
import { UpstreamService } from 'src/upstream';
import { testConfig } from 'test/support/config';
import { FakeClock } from 'test/support/fake-clock';
import { fakePath } from 'test/support/fake-path';
import { until } from 'test/support/wait';
import { CacheMetrics } from '../cache.metrics';
import { rowFromNarInfo } from '../narinfo-record';
import { Download, IntegrityError } from './download';
import { DownloadRegistry } from './download-registry';
import { DownloadSlots } from './download-slots';
import { Hashing, NodeHashing } from './hashing';
import { NarDownloader, expectationsOf } from './nar-downloader.service';
import { TempFile, TempFiles } from './temp-files';

/** Fakes typed against what NarDownloader uses of each collaborator. */
interface Fakes {
  locks: Pick<LockPort, 'withLock'> & { taken: string[] };
  storage: { [K in 'head' | 'putFile' | 'delete']: jest.MockedFunction<StoragePort[K]> } & { committed: Map<string, Buffer> };
  narFiles: { [K in 'findByKey' | 'insertIfAbsent']: jest.MockedFunction<NarFileRepository[K]> };
  upstream: { fetchNar: jest.MockedFunction<UpstreamService['fetchNar']> };
  announcements: { [K in 'announce' | 'withdraw']: jest.MockedFunction<NarDownloadRepository[K]> };
  identity: Pick<InstanceIdentity, 'owner'>;
  /** Temp files in memory, by path, while they exist. */
  files: Pick<TempFiles, 'next'> & { existing: Map<string, Buffer> };
}

function memoryFiles(): Fakes['files'] {
  const existing = new Map<string, Buffer>();
  let made = 0;
  return {
    existing,
    next: (): TempFile => {
      const path = `/memory/download-${++made}.tmp`;
      return {
        path,
        create: () => {
          if (existing.has(path)) throw new Error(`${path} exists`);
          existing.set(path, Buffer.alloc(0));
          return {
            writeAt: async (chunks, position) => {
              const before = existing.get(path)!;
              if (position !== before.length) throw new Error('writes must follow each other');
              existing.set(path, Buffer.concat([before, ...chunks]));
            },
            close: async () => undefined,
          };
        },
        openForReading: () => Promise.reject(new Error('no reader in these tests')),
        remove: async () => void existing.delete(path),
      };
    },
  };
}

function fakes(owner?: string): Fakes {
  const taken: string[] = [];
  const committed = new Map<string, Buffer>();
  const files = memoryFiles();
  const lease = { signal: new AbortController().signal };
  return {
    locks: { taken, withLock: (key, _ttl, fn) => (taken.push(key), fn(lease)) },
    storage: {
      committed,
      head: jest.fn().mockResolvedValue(null),
      // Takes the verified temp file as local storage would: what the download committed.
      putFile: jest.fn(async (key: string, path: string) => {
        const bytes = files.existing.get(path);
        if (!bytes) throw new Error(`no temp file ${path}`);
        committed.set(key, bytes);
        return { size: bytes.length, created: true };
      }),
      delete: jest.fn().mockResolvedValue(true),
    },
    narFiles: { findByKey: jest.fn().mockResolvedValue(null), insertIfAbsent: jest.fn().mockResolvedValue(undefined) },
    upstream: { fetchNar: jest.fn() },
    announcements: { announce: jest.fn().mockResolvedValue(undefined), withdraw: jest.fn().mockResolvedValue(undefined) },
    identity: { owner },
    files,
  };
}

const path = fakePath('hello', 300_000);
const UPSTREAM = 'https://cache.example';
const row = (overrides: Partial<NewNarInfo> = {}): NewNarInfo => ({
  ...rowFromNarInfo(path.hash, path.info, {
    upstreamUrl: UPSTREAM,
    upstreamNarUrl: `${UPSTREAM}/${path.info.url}`,
    verified: true,
    now: 1,
  }),
  ...overrides,
});
const chunks = (bytes: Buffer) => Readable.from([bytes.subarray(0, 100_000), bytes.subarray(100_000)]);

describe('NarDownloader', () => {
  let f: Fakes;
  let registry: Registry;
  let clock: FakeClock;
  let sut: NarDownloader;
  let downloads: DownloadRegistry;
  /** Until the download's run is over, its clean-up included (temp file, slot, announcement): the registry forgets it last. */
  const settled = (download: Download) => until(`${download.key} settled`, () => downloads.get(download.key) !== download);
  const counter = async (name: string) => (await registry.getSingleMetricAsString(name)).split('\n').filter((l) => !l.startsWith('#'));

  async function build(flags: Record<string, unknown> = {}, owner?: string): Promise<void> {
    f = fakes(owner);
    registry = new Registry();
    clock = new FakeClock(1_000_000);
    const config = testConfig(flags);
    const moduleRef = await Test.createTestingModule({
      providers: [
        NarDownloader,
        DownloadRegistry,
        DownloadSlots,
        { provide: NCPS_CONFIG, useValue: config },
        { provide: LockPort, useValue: f.locks },
        { provide: StoragePort, useValue: f.storage },
        { provide: NarFileRepository, useValue: f.narFiles },
        { provide: UpstreamService, useValue: f.upstream },
        { provide: NarDownloadRepository, useValue: f.announcements },
        { provide: CacheMetrics, useValue: new CacheMetrics(registry) },
        { provide: InstanceIdentity, useValue: f.identity },
        { provide: TempFiles, useValue: f.files },
        { provide: Hashing, useClass: NodeHashing },
        { provide: Clock, useValue: clock },
      ],
    }).compile();
    sut = moduleRef.get(NarDownloader);
    downloads = moduleRef.get(DownloadRegistry);
  }

  beforeEach(() => build());

  it('fetches a NAR under its download lock, verifies it, stores the file and records its row', async () => {
    f.upstream.fetchNar.mockResolvedValue({ body: chunks(path.nar), contentLength: path.nar.length });

    const { download, joined } = sut.downloadFor(row());
    await settled(download);

    expect(joined).toBe(false);
    expect(download.state).toBe('done');
    expect(f.locks.taken).toEqual([`download:nar:${path.narName}`]);
    expect(f.upstream.fetchNar).toHaveBeenCalledWith(`${UPSTREAM}/${path.info.url}`, { url: UPSTREAM });
    expect(f.storage.committed.get(path.info.url)?.equals(path.nar)).toBe(true);
    expect(f.narFiles.insertIfAbsent).toHaveBeenCalledWith(
      expect.objectContaining({ key: path.info.url, compression: 'none', fileSize: path.nar.length, fileHash: path.info.fileHash }),
    );
    expect(await counter('ncps_nar_downloads_total')).toContain('ncps_nar_downloads_total{result="started"} 1');
    // Local locks: a single instance announces nothing; and the temp file is gone once nobody reads it.
    expect(f.announcements.announce).not.toHaveBeenCalled();
    expect(f.files.existing.size).toBe(0);
  });

  it('joins the download already running for a NAR, giving back the slot it was handed', async () => {
    const held = new Readable({ read: () => undefined });
    f.upstream.fetchNar.mockResolvedValue({ body: held });
    const slots = { first: { release: jest.fn() }, second: { release: jest.fn() } };

    const first = sut.downloadFor(row(), slots.first);
    const second = sut.downloadFor(row(), slots.second);

    expect(second).toEqual({ download: first.download, joined: true });
    expect(slots.second.release).toHaveBeenCalledTimes(1);
    expect(slots.first.release).not.toHaveBeenCalled();
    held.push(path.nar);
    held.push(null);
    await settled(first.download);
    expect(slots.first.release).toHaveBeenCalledTimes(1);
    expect(f.upstream.fetchNar).toHaveBeenCalledTimes(1);
    expect(await counter('ncps_nar_downloads_total')).toEqual(
      expect.arrayContaining(['ncps_nar_downloads_total{result="started"} 1', 'ncps_nar_downloads_total{result="joined"} 1']),
    );
  });

  it('counts as fetching once storage was found without the NAR, before the upstream answers', async () => {
    let answer!: (response: { body: Readable }) => void;
    f.upstream.fetchNar.mockReturnValue(new Promise((resolve) => (answer = resolve)));
    let stored!: (found: null) => void;
    f.storage.head.mockReturnValueOnce(new Promise((resolve) => (stored = resolve)));

    const { download } = sut.downloadFor(row());
    await new Promise(setImmediate);
    expect(f.storage.head).toHaveBeenCalledTimes(1);
    expect(download.fetching).toBe(false);
    stored(null);
    await new Promise(setImmediate);
    expect(f.upstream.fetchNar).toHaveBeenCalledTimes(1);
    // Clients join it from here (NarService skips its storage lookup), waiting for the first bytes.
    expect(download.fetching).toBe(true);
    answer({ body: Readable.from([path.nar]) });
    await settled(download);
    expect(download.state).toBe('done');
  });

  it('fetches nothing when the NAR is in storage by the time the lock is held', async () => {
    f.storage.head.mockResolvedValue({ key: path.info.url, size: path.nar.length });

    const { download } = sut.downloadFor(row());
    await settled(download);

    expect(download).toMatchObject({ state: 'done', foundInStorage: true });
    expect(f.upstream.fetchNar).not.toHaveBeenCalled();
    expect(f.storage.putFile).not.toHaveBeenCalled();
    // Nothing was fetched: no download counted as started.
    expect(await counter('ncps_nar_downloads_total')).toEqual(expect.arrayContaining(['ncps_nar_downloads_total{result="started"} 0']));
  });

  describe('a NAR whose narinfo was fetched just now (fresh)', () => {
    it('is asked of the upstream while storage is being checked, and streamed once storage said no', async () => {
      let stored!: (found: null) => void;
      f.storage.head.mockReturnValueOnce(new Promise((resolve) => (stored = resolve)));
      f.upstream.fetchNar.mockResolvedValue({ body: chunks(path.nar), contentLength: path.nar.length });

      const { download } = sut.downloadFor(row(), undefined, { fresh: true });
      await new Promise(setImmediate);
      expect(f.upstream.fetchNar).toHaveBeenCalledTimes(1);
      // Clients join it already, rather than asking storage themselves.
      expect(download.fetching).toBe(true);
      stored(null);
      await settled(download);

      expect(download.state).toBe('done');
      expect(f.upstream.fetchNar).toHaveBeenCalledTimes(1);
      expect(f.storage.committed.get(path.info.url)?.equals(path.nar)).toBe(true);
      expect(await counter('ncps_nar_downloads_total')).toContain('ncps_nar_downloads_total{result="started"} 1');
    });

    it('drops the response unread when storage has the NAR after all, and stores nothing', async () => {
      f.storage.head.mockResolvedValue({ key: path.info.url, size: path.nar.length });
      const body = new Readable({ read: () => undefined });
      f.upstream.fetchNar.mockResolvedValue({ body, contentLength: path.nar.length });

      const { download } = sut.downloadFor(row(), undefined, { fresh: true });
      await settled(download);
      await until('the response dropped', () => body.destroyed);

      expect(download).toMatchObject({ state: 'done', foundInStorage: true });
      expect(f.storage.putFile).not.toHaveBeenCalled();
      expect(await counter('ncps_nar_downloads_total')).toEqual(expect.arrayContaining(['ncps_nar_downloads_total{result="started"} 0']));
    });

    it('drops the response when storage cannot be asked, and fails the download', async () => {
      f.storage.head.mockRejectedValue(new Error('s3 is down'));
      const body = new Readable({ read: () => undefined });
      f.upstream.fetchNar.mockResolvedValue({ body });

      const { download } = sut.downloadFor(row(), undefined, { fresh: true });
      await settled(download);
      await until('the response dropped', () => body.destroyed);

      expect(download.state).toBe('failed');
      expect(download.error?.message).toBe('s3 is down');
      expect(f.storage.putFile).not.toHaveBeenCalled();
    });
  });

  it('fetches again a NAR whose row exists but whose object storage lost, and counts it', async () => {
    f.narFiles.findByKey.mockResolvedValue({
      id: 1,
      key: path.info.url,
      compression: 'none',
      fileSize: 1,
      fileHash: null,
      createdAt: 1,
      lastAccessedAt: 1,
    });
    f.upstream.fetchNar.mockResolvedValue({ body: chunks(path.nar) });

    const { download } = sut.downloadFor(row());
    await settled(download);

    expect(download.state).toBe('done');
    expect(f.storage.committed.get(path.info.url)?.equals(path.nar)).toBe(true);
    expect(await counter('ncps_nar_missing_objects_total')).toContain('ncps_nar_missing_objects_total 1');
  });

  it('fails a NAR that no upstream is known for (an upload), asking nobody', async () => {
    const { download } = sut.downloadFor(row({ upstreamUrl: null, upstreamNarUrl: null }));
    await settled(download);

    expect(download.state).toBe('failed');
    expect(download.error?.message).toMatch(/no known upstream/);
    expect(f.upstream.fetchNar).not.toHaveBeenCalled();
  });

  it('stores nothing when the upstream fails, and frees the download slot', async () => {
    await build({ 'cache-upstream-max-concurrent-downloads': 1 });
    f.upstream.fetchNar.mockRejectedValueOnce(new Error('upstream answered HTTP 503'));

    const { download } = sut.downloadFor(row());
    await settled(download);

    expect(download.state).toBe('failed');
    expect(download.error?.message).toMatch(/503/);
    expect(f.storage.putFile).not.toHaveBeenCalled();
    expect(f.narFiles.insertIfAbsent).not.toHaveBeenCalled();
    // The only slot was given back: the next download starts.
    f.upstream.fetchNar.mockResolvedValue({ body: chunks(path.nar) });
    const next = sut.downloadFor(row());
    await settled(next.download);
    expect(next.download.state).toBe('done');
  });

  it('stores nothing when the bytes do not match the narinfo (integrity failure)', async () => {
    const tampered = Buffer.from(path.nar);
    tampered[1234] ^= 0xff;
    f.upstream.fetchNar.mockResolvedValue({ body: chunks(tampered) });

    const { download } = sut.downloadFor(row());
    await settled(download);

    expect(download.state).toBe('failed');
    expect(download.error).toBeInstanceOf(IntegrityError);
    expect(f.storage.putFile).not.toHaveBeenCalled();
    expect(f.files.existing.size).toBe(0);
  });

  it('removes the object it created when its row cannot be written, and keeps one it did not create', async () => {
    f.narFiles.insertIfAbsent.mockRejectedValue(new Error('database is locked'));
    f.upstream.fetchNar.mockImplementation(async () => ({ body: chunks(path.nar) }));

    const created = sut.downloadFor(row()).download;
    await settled(created);
    expect(created.state).toBe('failed');
    expect(f.storage.delete).toHaveBeenCalledWith(path.info.url);

    f.storage.delete.mockClear();
    f.storage.putFile.mockResolvedValueOnce({ size: path.nar.length, created: false });
    const kept = sut.downloadFor(row()).download;
    await settled(kept);
    expect(kept.state).toBe('failed');
    expect(f.storage.delete).not.toHaveBeenCalled();
  });

  it('with distributed locks, announces the download while it runs and withdraws it after', async () => {
    await build({ 'cache-lock-backend': 'postgres', 'cache-database-url': 'postgresql://db.example/ncps' }, 'http://10.0.0.7:8501');
    const held = new Readable({ read: () => undefined });
    f.upstream.fetchNar.mockResolvedValue({ body: held });

    const { download } = sut.downloadFor(row());
    await download.ready;
    await new Promise((resolve) => setImmediate(resolve));
    expect(f.announcements.announce).toHaveBeenCalledWith(path.info.url, 'http://10.0.0.7:8501', expect.any(Number), expect.any(Number));
    expect(f.announcements.withdraw).not.toHaveBeenCalled();

    held.push(path.nar);
    held.push(null);
    await settled(download);
    expect(f.announcements.withdraw).toHaveBeenCalledWith(path.info.url, 'http://10.0.0.7:8501');
  });

  it('dates the stored NAR by the clock when it is committed', async () => {
    f.upstream.fetchNar.mockResolvedValue({ body: chunks(path.nar) });

    const { download } = sut.downloadFor(row());
    await settled(download);

    expect(f.narFiles.insertIfAbsent).toHaveBeenCalledWith(expect.objectContaining({ createdAt: 1_000_000, lastAccessedAt: 1_000_000 }));
  });

  it('with distributed locks, refreshes its announcement every 5 s for 15 s more while the download runs, and not after', async () => {
    await build({ 'cache-lock-backend': 'postgres', 'cache-database-url': 'postgresql://db.example/ncps' }, 'http://10.0.0.7:8501');
    const held = new Readable({ read: () => undefined });
    f.upstream.fetchNar.mockResolvedValue({ body: held });
    const owner = 'http://10.0.0.7:8501';

    const { download } = sut.downloadFor(row());
    await download.ready;
    await clock.advance(4_999);
    expect(f.announcements.announce.mock.calls).toEqual([[path.info.url, owner, 1_000_000, 1_015_000]]);
    await clock.advance(1);
    await clock.advance(5_000);
    expect(f.announcements.announce.mock.calls).toEqual([
      [path.info.url, owner, 1_000_000, 1_015_000],
      [path.info.url, owner, 1_000_000, 1_020_000],
      [path.info.url, owner, 1_000_000, 1_025_000],
    ]);

    held.push(path.nar);
    held.push(null);
    await settled(download);
    await clock.advance(60_000);
    expect(f.announcements.announce).toHaveBeenCalledTimes(3);
    expect(clock.timers).toBe(0);
  });

  it('tells a narinfo row answered but not yet inserted, until it is forgotten', () => {
    const answered = row();
    const forget = sut.expectRow(answered);
    expect(sut.expectedRow(path.info.url)).toBe(answered);
    forget();
    expect(sut.expectedRow(path.info.url)).toBeUndefined();
  });
});

describe('expectationsOf', () => {
  const base = rowFromNarInfo(path.hash, path.info, { upstreamUrl: UPSTREAM, upstreamNarUrl: 'x', verified: true, now: 1 });

  it('an uncompressed NAR must be NarSize bytes hashing to NarHash', () => {
    expect(expectationsOf(base, 99)).toEqual({ size: path.nar.length, maxSize: 99, sha256: expect.any(Buffer) });
  });

  it('a compressed file is checked by FileSize/FileHash, or decompressed against NarHash without a FileHash', () => {
    const xz = { ...base, compression: 'xz', fileSize: 1000 };
    expect(expectationsOf(xz, 99)).toMatchObject({ size: 1000, maxSize: 99, sha256: expect.any(Buffer) });
    expect(expectationsOf({ ...xz, fileHash: null, fileSize: null }, 99)).toEqual({
      size: undefined,
      maxSize: 99,
      nar: { compression: 'xz', narHash: expect.any(Buffer), narSize: path.nar.length },
    });
  });
});
