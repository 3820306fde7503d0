import { Inject, Injectable, Logger } from '@nestjs/common';
import { NCPS_CONFIG } from 'src/config/config.module';
import { NcpsConfig } from 'src/config/config';
import { NarInfoEntity, NarInfoRepository } from 'src/database';
import { LockPort, downloadNarInfoKey } from 'src/locking';
import { SigningKeyService } from 'src/signing';
import { StoragePort } from 'src/storage';
import { UpstreamService } from 'src/upstream';
import { NarDownloader } from './download/nar-downloader.service';
import { DownloadSlots } from './download/download-slots';
import { narKeyFor } from './nar-key';
import { rowFromNarInfo } from './narinfo-record';

/**
 * A narinfo miss: asks the upstreams (under the cluster-wide `download:narinfo:<hash>` lock), rewrites
 * the NAR URL to our own stable scheme, stores the narinfo and starts fetching its NAR in the background.
 */
@Injectable()
export class NarInfoFetcher {
  private readonly logger = new Logger(NarInfoFetcher.name);

  constructor(
    @Inject(NCPS_CONFIG) private readonly config: NcpsConfig,
    private readonly locks: LockPort,
    private readonly narInfos: NarInfoRepository,
    private readonly upstream: UpstreamService,
    private readonly signing: SigningKeyService,
    private readonly storage: StoragePort,
    private readonly downloader: NarDownloader,
    private readonly slots: DownloadSlots,
  ) {}

  /** The stored narinfo row after fetching it, or null when no healthy upstream has it. */
  async fetch(hash: string): Promise<NarInfoEntity | null> {
    const row = await this.locks.withLock(downloadNarInfoKey(hash), this.config.lock.downloadTtlMs, async () => {
      const existing = await this.narInfos.findByHash(hash);
      if (existing) return existing;
      const found = await this.upstream.findNarInfo(hash);
      if (!found) return null;
      const { info } = found;
      // Our URL: by FileHash like Nix's own, never a compressed file by its NarHash (see narKeyFor).
      const key = narKeyFor(hash, info);
      const sigs = info.sigs.filter((sig) => !sig.startsWith(`${this.signing.keyName}:`));
      await this.narInfos.insertIfAbsent(
        rowFromNarInfo(
          hash,
          { ...info, url: key, sigs },
          // An upstream allowed unsigned had nothing to check against: never signed by us (see getNarInfo).
          { upstreamUrl: found.upstream.url, upstreamNarUrl: found.narUrl, verified: found.upstream.verified, now: Date.now() },
        ),
      );
      this.logger.log({ hash, upstream: found.upstream.url }, 'narinfo fetched from upstream');
      return this.narInfos.findByHash(hash);
    });
    if (row) void this.prefetch(row);
    return row;
  }

  /**
   * Waits for a prefetch slot before the download exists, so a client asking for this NAR meanwhile
   * starts its own download at client priority instead of queueing behind prefetches; the prefetch
   * then joins it (and gives its slot back). A dropped prefetch does nothing.
   */
  private async prefetch(row: NarInfoEntity): Promise<void> {
    const slot = await this.slots.acquire('prefetch');
    if (!slot) {
      this.logger.debug({ hash: row.hash }, 'NAR prefetch dropped: too many downloads waiting');
      return;
    }
    try {
      if (await this.storage.head(row.url)) return slot.release();
      this.downloader.downloadFor(row, slot);
    } catch (e) {
      slot.release();
      this.logger.warn({ hash: row.hash, err: (e as Error).message }, 'NAR prefetch did not start');
    }
  }
}
