import { EventEmitter } from 'node:events';
import type { Download } from 'src/cache/download/download';
import { DownloadRegistry } from 'src/cache/download/download-registry';
import { DownloadSlot, DownloadSlots } from 'src/cache/download/download-slots';
import { NarDownloader } from 'src/cache/download/nar-downloader.service';
import { NarInfoFetcher } from 'src/cache/narinfo-fetcher.service';
import { NotFoundError } from 'src/common/errors';
import { NarInfoRepository, NewNarInfo } from 'src/database';
import { StoragePort } from 'src/storage';
import { PathProgress } from './closure-walk';
import { PathWarmer } from './path-warmer';

const HASH = '0c0f8f3b0sv1m4ahbcw8h9i2zj0b2a5a';
const DEP = '1c0f8f3b0sv1m4ahbcw8h9i2zj0b2a5a';

function row(): NewNarInfo {
  return {
    hash: HASH,
    storePath: `/nix/store/${HASH}-top`,
    url: 'nar/abc.nar.xz',
    refs: `${DEP}-dep ${HASH}-top`,
  } as NewNarInfo;
}

/** A download as NarDownloader hands it out: ends with 'done' or 'failed'. */
class FakeDownload extends EventEmitter {
  state = 'running';
  received = 0;
  foundInStorage = false;
  error?: Error;
  finish(bytes: number): void {
    this.received = bytes;
    this.state = 'done';
    this.emit('done');
  }
  fail(error: Error): void {
    this.state = 'failed';
    this.error = error;
    this.emit('failed', error);
  }
}

function setup(options: {
  storedRow?: boolean;
  fetchedRow?: boolean;
  narStored?: boolean;
  running?: FakeDownload;
  dropFirstSlot?: boolean;
}) {
  const calls: string[] = [];
  const started = new FakeDownload();
  const slot: DownloadSlot = { release: jest.fn() };
  let drops = options.dropFirstSlot ? 1 : 0;
  const narInfos = { findByHash: jest.fn(async () => (options.storedRow ? row() : null)) };
  const fetcher = { fetch: jest.fn(async () => (options.fetchedRow === false ? null : row())) };
  const downloader = {
    downloadFor: jest.fn((_row: NewNarInfo, given?: DownloadSlot) => {
      calls.push(`downloadFor(${given === slot ? 'slot' : 'none'})`);
      return { download: started as unknown as Download, joined: false };
    }),
  };
  const downloads = { get: jest.fn(() => options.running as unknown as Download | undefined) };
  const slots = {
    acquire: jest.fn(async (priority: string) => {
      calls.push(`acquire(${priority})`);
      if (drops > 0) {
        drops -= 1;
        return null;
      }
      return slot;
    }),
  };
  const storage = { head: jest.fn(async () => (options.narStored ? { size: 1 } : null)) };
  const sut = new PathWarmer(
    narInfos as unknown as NarInfoRepository,
    fetcher as unknown as NarInfoFetcher,
    downloader as unknown as NarDownloader,
    downloads as unknown as DownloadRegistry,
    slots as unknown as DownloadSlots,
    storage as unknown as StoragePort,
  );
  const refs: string[][] = [];
  const receiving: unknown[] = [];
  const progress: PathProgress = { references: (r) => refs.push([...r]), receiving: (s) => receiving.push(s) };
  return { sut, calls, started, slot, fetcher, slots, downloader, progress, refs, receiving };
}

describe('PathWarmer', () => {
  it('takes nothing from upstream when the narinfo and its NAR are stored, and reports the references', async () => {
    const { sut, fetcher, slots, progress, refs } = setup({ storedRow: true, narStored: true });

    await expect(sut.warm(HASH, progress)).resolves.toEqual({ storePath: `/nix/store/${HASH}-top`, bytes: 0, fetched: false });

    expect(fetcher.fetch).not.toHaveBeenCalled();
    expect(slots.acquire).not.toHaveBeenCalled();
    expect(refs).toEqual([[DEP, HASH]]);
  });

  it('fetches a missing narinfo through the fetcher, and the NAR at prefetch priority with the slot it got', async () => {
    const { sut, calls, started, progress, receiving } = setup({});

    const warming = sut.warm(HASH, progress);
    await new Promise((resolve) => setImmediate(resolve));
    expect(calls).toEqual(['acquire(prefetch)', 'downloadFor(slot)']);
    expect(receiving).toEqual([started]);
    started.finish(4096);

    await expect(warming).resolves.toEqual({ storePath: `/nix/store/${HASH}-top`, bytes: 4096, fetched: true });
  });

  it('fetches the NAR of a narinfo stored without it', async () => {
    const { sut, started, fetcher, progress } = setup({ storedRow: true });

    const warming = sut.warm(HASH, progress);
    await new Promise((resolve) => setImmediate(resolve));
    started.finish(10);

    await expect(warming).resolves.toMatchObject({ bytes: 10, fetched: true });
    expect(fetcher.fetch).not.toHaveBeenCalled();
  });

  it('joins a download already running (a client or a prefetch) without taking a slot', async () => {
    const running = new FakeDownload();
    const { sut, slots, downloader, progress } = setup({ running });

    const warming = sut.warm(HASH, progress);
    await new Promise((resolve) => setImmediate(resolve));
    running.finish(77);

    await expect(warming).resolves.toMatchObject({ bytes: 77, fetched: true });
    expect(slots.acquire).not.toHaveBeenCalled();
    expect(downloader.downloadFor).not.toHaveBeenCalled();
  });

  it('asks for a slot again when its prefetch was dropped from a full queue', async () => {
    const { sut, calls, started, progress } = setup({ dropFirstSlot: true });

    const warming = sut.warm(HASH, progress);
    await new Promise((resolve) => setImmediate(resolve));
    started.finish(1);

    await expect(warming).resolves.toMatchObject({ fetched: true });
    expect(calls).toEqual(['acquire(prefetch)', 'acquire(prefetch)', 'downloadFor(slot)']);
  });

  it('starts no NAR download once shutting down, but still counts a stored path as warmed', async () => {
    const stopping = AbortSignal.abort();
    const missing = setup({});
    await expect(missing.sut.warm(HASH, missing.progress, stopping)).rejects.toThrow(/shutting down/);
    expect(missing.slots.acquire).not.toHaveBeenCalled();

    const stored = setup({ storedRow: true, narStored: true });
    await expect(stored.sut.warm(HASH, stored.progress, stopping)).resolves.toMatchObject({ fetched: false });
  });

  it('fails with the download error, and with NotFoundError when no upstream has the narinfo', async () => {
    const failing = setup({});
    const warming = failing.sut.warm(HASH, failing.progress);
    await new Promise((resolve) => setImmediate(resolve));
    failing.started.fail(new Error('hash mismatch'));
    await expect(warming).rejects.toThrow('hash mismatch');

    const missing = setup({ fetchedRow: false });
    await expect(missing.sut.warm(HASH, missing.progress)).rejects.toThrow(NotFoundError);
    expect(missing.refs).toEqual([]);
  });
});
