import { Logger } from '@nestjs/common';
import { NcpsConfig } from 'src/config/config';
import { NarInfoEntity, NarInfoRepository, NewNarInfo } from 'src/database';
import { LockPort } from 'src/locking';
import { NarInfo, nix32Encode } from 'src/nix';
import { SigningKeyService } from 'src/signing';
import { StoragePort } from 'src/storage';
import { UpstreamNarInfo, UpstreamService } from 'src/upstream';
import { DownloadSlots } from './download/download-slots';
import { NarDownloader } from './download/nar-downloader.service';
import { NarInfoFetcher } from './narinfo-fetcher.service';

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
  } as NarInfo,
  narUrl: 'https://up.example/nar/abc.nar',
};

/** A lock that queues holders of one key, like the local backend. */
function fakeLocks(): LockPort {
  const tails = new Map<string, Promise<unknown>>();
  return {
    withLock: <T>(key: string, _ttl: number, fn: () => Promise<T>): Promise<T> => {
      const run = (tails.get(key) ?? Promise.resolve()).then(() => fn());
      tails.set(key, run.catch(() => undefined));
      return run;
    },
  } as unknown as LockPort;
}

describe('NarInfoFetcher', () => {
  let rows: Map<string, NewNarInfo>;
  let finishInsert: (error?: Error) => void;
  let narInfos: NarInfoRepository;
  let upstream: { findNarInfo: jest.Mock };
  let downloader: NarDownloader;
  let sut: NarInfoFetcher;

  beforeEach(() => {
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    rows = new Map();
    narInfos = {
      findByHash: async (hash: string) => (rows.get(hash) as NarInfoEntity | undefined) ?? null,
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
    upstream = { findNarInfo: jest.fn(async () => upstreamAnswer) };
    const config = { lock: { downloadTtlMs: 1000 } } as NcpsConfig;
    // Only its expected rows are used here: nothing is downloaded (every prefetch is dropped).
    downloader = new (NarDownloader as unknown as new (config: NcpsConfig) => NarDownloader)(config);
    const slots = { acquire: async () => null } as unknown as DownloadSlots;
    const signing = { keyName: 'ours-1' } as SigningKeyService;
    sut = new NarInfoFetcher(config, fakeLocks(), narInfos, upstream as unknown as UpstreamService, signing, {} as StoragePort, downloader, slots);
  });

  afterEach(() => jest.restoreAllMocks());

  it('answers once the narinfo is verified, before its row is stored; its NAR can be found meanwhile', async () => {
    const row = await sut.fetch(HASH);
    expect(row).toMatchObject({ hash: HASH, narHash: NAR_HASH, upstreamNarUrl: upstreamAnswer.narUrl });
    expect(rows.has(HASH)).toBe(false);
    expect(downloader.expectedRow(row!.url)).toBe(row);
    finishInsert();
    await new Promise((r) => setImmediate(r));
    expect(rows.get(HASH)).toBe(row);
    expect(downloader.expectedRow(row!.url)).toBeUndefined();
  });

  it('a second request meanwhile waits for the stored row and gets the same one, without asking upstream again', async () => {
    const first = await sut.fetch(HASH);
    const second = sut.fetch(HASH);
    await new Promise((r) => setImmediate(r));
    finishInsert();
    expect(await second).toBe(first);
    expect(upstream.findNarInfo).toHaveBeenCalledTimes(1);
  });

  it('a row that cannot be stored was answered all the same; the next request fetches it again', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const first = await sut.fetch(HASH);
    finishInsert(new Error('database is down'));
    await new Promise((r) => setImmediate(r));
    expect(warn).toHaveBeenCalledWith(expect.objectContaining({ err: 'database is down' }), 'narinfo answered but not stored');
    expect(downloader.expectedRow(first!.url)).toBeUndefined();
    const again = sut.fetch(HASH);
    const { createdAt: _c, lastAccessedAt: _a, ...content } = first!;
    expect(await again).toMatchObject(content);
    expect(upstream.findNarInfo).toHaveBeenCalledTimes(2);
  });

  it('answers null when no upstream has it, and throws what the lookup throws', async () => {
    upstream.findNarInfo.mockResolvedValueOnce(null);
    expect(await sut.fetch(HASH)).toBeNull();
    upstream.findNarInfo.mockRejectedValueOnce(new Error('invalid store path hash'));
    await expect(sut.fetch(HASH)).rejects.toThrow('invalid store path hash');
  });
});
