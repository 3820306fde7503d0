import { Test } from '@nestjs/testing';
import { Registry } from 'prom-client';
import { Readable } from 'node:stream';
import { Clock } from 'src/common/clock';
import { NotFoundError } from 'src/common/errors';
import { NCPS_CONFIG } from 'src/config/config.module';
import { NarFileRepository, NarInfoRepository, NewNarInfo } from 'src/database';
import { LockPort } from 'src/locking';
import { StoragePort } from 'src/storage';
import { FakeClock } from 'test/support/fake-clock';
import { fakePath } from 'test/support/fake-path';
import { AccessTracker } from './access-tracker';
import { CacheMetrics } from './cache.metrics';
import { DownloadRegistry } from './download/download-registry';
import { Hashing, NodeHashing } from './download/hashing';
import { NarDownloader } from './download/nar-downloader.service';
import { PeerStreamService } from './download/peer-stream.service';
import { TempFiles } from './download/temp-files';
import { NarService } from './nar.service';
import { testConfig } from 'test/support/config';

/** Fakes typed against what NarService uses of each collaborator. */
interface Fakes {
  narInfos: { findOneByUrl: jest.MockedFunction<NarInfoRepository['findOneByUrl']> };
  narFiles: { [K in 'findByKey' | 'deleteByKey']: jest.MockedFunction<NarFileRepository[K]> };
  storage: { [K in 'head' | 'openRead' | 'delete']: jest.MockedFunction<StoragePort[K]> };
  access: { narFileServed: jest.MockedFunction<AccessTracker['narFileServed']> };
  downloader: { [K in 'expectedRow' | 'downloadFor']: jest.MockedFunction<NarDownloader[K]> };
  downloads: { get: jest.MockedFunction<DownloadRegistry['get']> };
  peers: { [K in 'open' | 'waitForPeer']: jest.MockedFunction<PeerStreamService[K]> };
  locks: Pick<LockPort, 'withLock' | 'withReadLock'> & { taken: string[] };
}

function fakes(): Fakes {
  const taken: string[] = [];
  const lease = { signal: new AbortController().signal };
  return {
    narInfos: { findOneByUrl: jest.fn().mockResolvedValue(null) },
    narFiles: { findByKey: jest.fn().mockResolvedValue(null), deleteByKey: jest.fn() },
    storage: { head: jest.fn().mockResolvedValue(null), openRead: jest.fn().mockResolvedValue(null), delete: jest.fn() },
    access: { narFileServed: jest.fn() },
    downloader: { expectedRow: jest.fn(), downloadFor: jest.fn() },
    downloads: { get: jest.fn() },
    peers: { open: jest.fn().mockResolvedValue(null), waitForPeer: jest.fn().mockResolvedValue(null) },
    locks: {
      taken,
      withLock: (key, _ttl, fn) => (taken.push(`x ${key}`), fn(lease)),
      withReadLock: (key, _ttl, fn) => (taken.push(`r ${key}`), fn(lease)),
    },
  };
}

async function serviceWith(f: Fakes, registry: Registry, flags: Record<string, unknown> = {}): Promise<NarService> {
  const config = testConfig(flags);
  const moduleRef = await Test.createTestingModule({
    providers: [
      NarService,
      { provide: NCPS_CONFIG, useValue: config },
      { provide: NarInfoRepository, useValue: f.narInfos },
      { provide: NarFileRepository, useValue: f.narFiles },
      { provide: StoragePort, useValue: f.storage },
      { provide: AccessTracker, useValue: f.access },
      { provide: NarDownloader, useValue: f.downloader },
      { provide: DownloadRegistry, useValue: f.downloads },
      { provide: PeerStreamService, useValue: f.peers },
      { provide: LockPort, useValue: f.locks },
      { provide: CacheMetrics, useValue: new CacheMetrics(registry) },
      TempFiles,
      { provide: Hashing, useClass: NodeHashing },
      { provide: Clock, useValue: new FakeClock() },
    ],
  }).compile();
  return moduleRef.get(NarService);
}

const path = fakePath('hello', 1000);
const NAME = `${path.narName}.nar`;
const KEY = `nar/${NAME}`;
const upstreamRow = { url: KEY, fileSize: 1000, upstreamNarUrl: `https://cache.example/${KEY}` } as NewNarInfo;
const uploadedRow = { url: KEY, fileSize: 1000, upstreamNarUrl: null } as NewNarInfo;

describe('NarService', () => {
  let f: Fakes;
  let registry: Registry;
  let sut: NarService;
  const counter = async (name: string) => (await registry.getSingleMetricAsString(name)).split('\n').filter((l) => !l.startsWith('#'));

  beforeEach(async () => {
    f = fakes();
    registry = new Registry();
    sut = await serviceWith(f, registry);
  });

  describe('headNar', () => {
    it('answers the stored size, else the size its upstream narinfo announces, else 404', async () => {
      f.storage.head.mockResolvedValueOnce({ key: KEY, size: 1234 });
      await expect(sut.headNar(NAME)).resolves.toBe(1234);
      f.narInfos.findOneByUrl.mockResolvedValueOnce(upstreamRow as never);
      await expect(sut.headNar(NAME)).resolves.toBe(1000);
      f.narInfos.findOneByUrl.mockResolvedValueOnce(uploadedRow as never);
      await expect(sut.headNar(NAME)).rejects.toThrow(NotFoundError);
      await expect(sut.headNar(NAME)).rejects.toThrow(NotFoundError);
    });

    it('refuses a malformed name with a 400 before any lookup', async () => {
      await expect(sut.headNar('not-a-nar')).rejects.toMatchObject({ status: 400 });
      expect(f.storage.head).not.toHaveBeenCalled();
    });
  });

  describe('getNar', () => {
    it('serves a stored NAR under its read lock, as a hit from the cache', async () => {
      const stream = Readable.from([path.nar]);
      f.storage.openRead.mockResolvedValue({ size: 1000, stream });
      const served = await sut.getNar(NAME);
      expect(served).toMatchObject({ size: 1000, source: 'cache' });
      expect(f.locks.taken).toEqual([`r cache:nar:${path.narName}`]);
      expect(f.access.narFileServed).toHaveBeenCalledWith(KEY);
      expect(await counter('ncps_cache_requests_total')).toContain('ncps_cache_requests_total{kind="nar",result="hit"} 1');
      served.stream.destroy();
    });

    it('answers 404 for a NAR neither stored nor known from a narinfo, counted as a miss', async () => {
      await expect(sut.getNar(NAME)).rejects.toThrow(NotFoundError);
      expect(f.downloader.downloadFor).not.toHaveBeenCalled();
      expect(await counter('ncps_cache_requests_total')).toContain('ncps_cache_requests_total{kind="nar",result="miss"} 1');
      expect(await counter('ncps_nar_missing_objects_total')).toContain('ncps_nar_missing_objects_total 0');
    });

    it('counts an uploaded NAR recorded as stored but gone from storage, and answers 404', async () => {
      f.narInfos.findOneByUrl.mockResolvedValue(uploadedRow as never);
      f.narFiles.findByKey.mockResolvedValue({ key: KEY } as never);
      await expect(sut.getNar(NAME)).rejects.toThrow(NotFoundError);
      expect(await counter('ncps_nar_missing_objects_total')).toContain('ncps_nar_missing_objects_total 1');
    });

    it('streams from another instance that is downloading it, with distributed locks, without downloading here', async () => {
      sut = await serviceWith(f, new Registry(), {
        'cache-lock-backend': 'redis',
        'cache-redis-addrs': ['r:6379'],
        'cache-database-url': 'postgresql://u@h/db',
      });
      f.narInfos.findOneByUrl.mockResolvedValue(upstreamRow as never);
      f.peers.open.mockResolvedValue({ size: 1000, stream: Readable.from([path.nar]), ownerUrl: 'http://ncps-2:8501' });
      const served = await sut.getNar(NAME);
      expect(served).toMatchObject({ size: 1000, source: 'upstream' });
      expect(f.downloader.downloadFor).not.toHaveBeenCalled();
      served.stream.destroy();
    });

    it('answers 502 when the upstream download it waited for failed', async () => {
      f.narInfos.findOneByUrl.mockResolvedValue(upstreamRow as never);
      const failed = { ready: Promise.resolve(), state: 'failed', foundInStorage: false };
      f.downloader.downloadFor.mockReturnValue({ download: failed as never, joined: false });
      await expect(sut.getNar(NAME)).rejects.toMatchObject({ status: 502 });
      expect(f.peers.open).not.toHaveBeenCalled(); // local locks: no peers to ask
    });
  });

  describe('deleteNar', () => {
    it('deletes the row, then the object; 404 only when neither existed', async () => {
      f.narFiles.deleteByKey.mockResolvedValueOnce(true);
      f.storage.delete.mockResolvedValueOnce(false);
      await expect(sut.deleteNar(NAME)).resolves.toBeUndefined();
      f.narFiles.deleteByKey.mockResolvedValueOnce(false);
      f.storage.delete.mockResolvedValueOnce(false);
      await expect(sut.deleteNar(NAME)).rejects.toThrow(NotFoundError);
      expect(f.narFiles.deleteByKey.mock.invocationCallOrder[0]).toBeLessThan(f.storage.delete.mock.invocationCallOrder[0]);
    });
  });
});
