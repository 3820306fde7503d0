import { Injectable } from '@nestjs/common';
// By path, not from 'src/cache': its index is imported by modules the cache module itself depends on.
import type { Download } from 'src/cache/download/download';
import { DownloadRegistry } from 'src/cache/download/download-registry';
import { DownloadSlots } from 'src/cache/download/download-slots';
import { NarDownloader } from 'src/cache/download/nar-downloader.service';
import { NarInfoFetcher } from 'src/cache/narinfo-fetcher.service';
import { NotFoundError } from 'src/common/errors';
import { NarInfoRepository, NewNarInfo } from 'src/database';
import { StoragePort } from 'src/storage';
import { PathProgress, WarmedPath } from './closure-walk';

/**
 * Warms one store path through the same miss path as a client: the narinfo by NarInfoFetcher (its
 * download lock, signature check, row), the NAR by NarDownloader (its lock, verification, commit).
 * NAR downloads start at prefetch priority (see DownloadSlots): they use at most half of the slots
 * and wait behind every client request, so live clients are served ahead of warming.
 */
@Injectable()
export class PathWarmer {
  constructor(
    private readonly narInfos: NarInfoRepository,
    private readonly fetcher: NarInfoFetcher,
    private readonly downloader: NarDownloader,
    private readonly downloads: DownloadRegistry,
    private readonly slots: DownloadSlots,
    private readonly storage: StoragePort,
  ) {}

  /** Once `stopping` is aborted (shutdown), no NAR download is started. */
  async warm(hash: string, progress: PathProgress, stopping?: AbortSignal): Promise<WarmedPath> {
    let fetched = false;
    let row: NewNarInfo | null = await this.narInfos.findByHash(hash);
    if (!row) {
      row = await this.fetcher.fetch(hash);
      if (!row) throw new NotFoundError('not found in any upstream');
      fetched = true;
    }
    progress.references(referencedHashes(row.refs));
    const download = await this.narDownload(row, stopping);
    if (!download) return { storePath: row.storePath, bytes: 0, fetched };
    progress.receiving(download);
    await settled(download);
    if (download.foundInStorage) return { storePath: row.storePath, bytes: 0, fetched };
    return { storePath: row.storePath, bytes: download.received, fetched: true };
  }

  /**
   * The download bringing `row`'s NAR: one running here (a client's, or the fetcher's own prefetch),
   * or a new one once a prefetch slot is free; undefined when the NAR is stored. A prefetch dropped
   * from a full queue asks again: warming is work somebody asked for.
   */
  private async narDownload(row: NewNarInfo, stopping?: AbortSignal): Promise<Download | undefined> {
    if (await this.storage.head(row.url)) return undefined;
    const stopped = () => {
      if (stopping?.aborted) throw new Error('not finished: ncps is shutting down');
    };
    for (;;) {
      stopped();
      const running = this.downloads.get(row.url);
      if (running) return running;
      const slot = await this.slots.acquire('prefetch');
      if (!slot) continue;
      try {
        stopped();
        if (await this.storage.head(row.url)) {
          slot.release();
          return undefined;
        }
        return this.downloader.downloadFor(row, slot).download;
      } catch (e) {
        slot.release();
        throw e;
      }
    }
  }
}

/** The store path hashes of a row's References (`<hash>-<name>`, space-separated). */
function referencedHashes(refs: string): string[] {
  return refs === '' ? [] : refs.split(' ').map((name) => name.slice(0, 32));
}

/** Resolves when `download` is done (committed, or found in storage); rejects with its error. */
function settled(download: Download): Promise<void> {
  if (download.state === 'done') return Promise.resolve();
  if (download.state === 'failed') return Promise.reject(download.error ?? new Error('NAR download failed'));
  return new Promise((resolve, reject) => {
    const done = () => {
      download.off('failed', failed);
      resolve();
    };
    const failed = (error: Error) => {
      download.off('done', done);
      reject(error);
    };
    download.once('done', done);
    download.once('failed', failed);
  });
}
