import { Inject, Injectable, Logger } from '@nestjs/common';
import { NCPS_CONFIG } from 'src/config/config.module';
import { NcpsConfig } from 'src/config/config';
import { NarInfoEntity, NarInfoRepository } from 'src/database';
import { LockPort, downloadNarInfoKey } from 'src/locking';
import { parseHash, nix32Encode } from 'src/nix';
import { SigningKeyService } from 'src/signing';
import { StoragePort } from 'src/storage';
import { UpstreamService } from 'src/upstream';
import { NarDownloader } from './download/nar-downloader.service';
import { narKey } from './nar-name';
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
  ) {}

  /** The stored narinfo row after fetching it, or null when no healthy upstream has it. */
  async fetch(hash: string): Promise<NarInfoEntity | null> {
    const row = await this.locks.withLock(downloadNarInfoKey(hash), this.config.lock.downloadTtlMs, async () => {
      const existing = await this.narInfos.findByHash(hash);
      if (existing) return existing;
      const found = await this.upstream.findNarInfo(hash);
      if (!found) return null;
      const { info } = found;
      // Our URL is named by FileHash like Nix's own, or by NarHash when the upstream gave no FileHash.
      const named = parseHash(info.fileHash ?? info.narHash).digest;
      const key = narKey(nix32Encode(named), info.compression);
      const sigs = info.sigs.filter((sig) => !sig.startsWith(`${this.signing.keyName}:`));
      await this.narInfos.insertIfAbsent(
        rowFromNarInfo(hash, { ...info, url: key, sigs }, { upstreamUrl: found.upstream.url, upstreamNarUrl: found.narUrl, now: Date.now() }),
      );
      this.logger.log({ hash, upstream: found.upstream.url }, 'narinfo fetched from upstream');
      return this.narInfos.findByHash(hash);
    });
    if (row) void this.prefetch(row);
    return row;
  }

  private async prefetch(row: NarInfoEntity): Promise<void> {
    try {
      if (await this.storage.head(row.url)) return;
      this.downloader.downloadFor(row);
    } catch (e) {
      this.logger.warn({ hash: row.hash, err: (e as Error).message }, 'NAR prefetch did not start');
    }
  }
}
