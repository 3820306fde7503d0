import { Inject, Injectable, Logger } from '@nestjs/common';
import { setImmediate } from 'node:timers/promises';
import { NCPS_CONFIG } from 'src/config/config.module';
import { NcpsConfig } from 'src/config/config';
import { Clock } from 'src/common/clock';
import { NarInfoRepository, NewNarInfo } from 'src/database';
import { LockPort, downloadNarInfoKey } from 'src/locking';
import { SigningKeyService } from 'src/signing';
import { UpstreamService } from 'src/upstream';
import { CacheMetrics } from './cache.metrics';
import { Download } from './download/download';
import { NarDownloader } from './download/nar-downloader.service';
import { DownloadSlots } from './download/download-slots';
import { narKeyFor } from './nar-key';
import { rowFromNarInfo } from './narinfo-record';
import { NegativeNarInfos } from './negative-narinfos';

/**
 * A narinfo miss: asks the upstreams (under the cluster-wide `download:narinfo:<hash>` lock), rewrites
 * the NAR URL to our own stable scheme, stores the narinfo and starts fetching its NAR in the background.
 * The answer goes out as soon as the narinfo is verified and its row built: the lock is held until
 * the row is stored, so another request (here or on another instance) waits for it and reads the
 * same row, and a NAR request meanwhile finds the row at the NarDownloader.
 *
 * Misses are cheap to repeat: requests here for a hash being fetched share that fetch instead of
 * queueing on its lock, and a certain "not found" is remembered (NegativeNarInfos) and answered at
 * once, before it is written, while the TTL lasts.
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
    private readonly downloader: NarDownloader,
    private readonly slots: DownloadSlots,
    private readonly negatives: NegativeNarInfos,
    private readonly metrics: CacheMetrics,
    private readonly clock: Clock,
  ) {}

  /** Fetches in progress here, by hash: later requests for the same hash share them. */
  private readonly inFlight = new Map<string, Promise<NewNarInfo | null>>();

  /**
   * The narinfo row after fetching it, or null when no healthy upstream has it. A fetched row is
   * returned as built, not read back (under the lock nobody else writes this hash), and before its
   * insert ended (see above). Callers have just looked for the stored row: a miss this instance
   * remembers is answered without looking again.
   */
  fetch(hash: string): Promise<NewNarInfo | null> {
    const running = this.inFlight.get(hash);
    if (running) return running;
    if (this.negatives.knownHere(hash)) {
      this.metrics.negativeHit();
      return Promise.resolve(null);
    }
    const fetching = this.fetchOnce(hash).finally(() => this.inFlight.delete(hash));
    this.inFlight.set(hash, fetching);
    return fetching;
  }

  private async fetchOnce(hash: string): Promise<NewNarInfo | null> {
    let answer!: (row: NewNarInfo | null) => void;
    /** The row built from the upstream's answer, unless the lock's check found one stored. */
    let fetchedHere: NewNarInfo | undefined;
    const answered = new Promise<NewNarInfo | null>((resolve) => (answer = resolve));
    const locked = this.locks.withLock(downloadNarInfoKey(hash), this.config.lock.downloadTtlMs, async () => {
      // Both asked at once (one round trip, or one turn of SQLite's batched lookups): the common
      // answer is "neither", and the stored row's full entity is read only when there is one.
      const [stored, negative] = await Promise.all([this.narInfos.findServedByHash(hash), this.negatives.check(hash)]);
      const existing = stored && (await this.narInfos.findByHash(hash));
      if (existing) return existing;
      if (negative === 'remembered') {
        this.metrics.negativeHit();
        return null;
      }
      const lookup = await this.upstream.lookupNarInfo(hash);
      if (lookup.outcome === 'absent') {
        // The 404 goes out now; the lock is held until the miss is written, as a row would be.
        answer(null);
        await this.negatives.remember(hash);
      }
      if (lookup.outcome !== 'found') return null;
      const { found } = lookup;
      const { info } = found;
      // Our URL: by FileHash like Nix's own, never a compressed file by its NarHash (see narKeyFor).
      const key = narKeyFor(hash, info);
      const sigs = this.signing.othersOf(info.sigs);
      const fetched = rowFromNarInfo(
        hash,
        { ...info, url: key, sigs },
        // An upstream allowed unsigned had nothing to check against: never signed by us (see getNarInfo).
        { upstreamUrl: found.upstream.url, upstreamNarUrl: found.narUrl, verified: found.upstream.verified, now: this.clock.now() },
      );
      const forget = this.downloader.expectRow(fetched);
      // Logged before the answer, while the request's log context (and its id) is still open.
      this.logger.log({ hash, upstream: found.upstream.url }, 'narinfo fetched from upstream');
      fetchedHere = fetched;
      answer(fetched);
      // The answer goes out before the insert: SQLite writes (and syncs) on the event loop itself.
      await setImmediate();
      try {
        await this.narInfos.insertIfAbsent(fetched);
      } catch (e) {
        // Already answered: the next request fetches it again.
        this.logger.warn({ hash, err: (e as Error).message }, 'narinfo answered but not stored');
      } finally {
        forget();
      }
      if (negative === 'expired') {
        await this.negatives
          .forget(hash)
          .catch((e: Error) => this.logger.warn({ hash, err: e.message }, 'expired narinfo miss not deleted'));
      }
      return fetched;
    });
    // A failure before the answer is thrown by the race; after it, the insert's is logged above.
    locked.catch(() => undefined);
    const row = await Promise.race([answered, locked]);
    // Once the answer went out (its writing takes no I/O wait, only this turn's promise callbacks):
    // the client needs the narinfo before it can ask for the NAR, and the upstream request would
    // delay it.
    if (row) process.nextTick(() => void this.prefetch(row, row === fetchedHere));
    return row;
  }

  /**
   * Waits for a prefetch slot before the download exists, so a client asking for this NAR meanwhile
   * starts its own download at client priority instead of queueing behind prefetches; the prefetch
   * then joins it (and gives its slot back). A dropped prefetch does nothing. Storage is not asked
   * here: the download checks it under its lock anyway, and a client that comes for the NAR while
   * the upstream is being asked finds the download registered and joins it, one storage lookup (a
   * round trip through the file system's thread pool, or to S3) sooner. The result is counted once
   * the download knows it: stored already, failed before its first byte, or started (or joined).
   * A narinfo just `fetched` from the upstream has its NAR asked for beside that check (see
   * NarDownloader.downloadFor).
   */
  private async prefetch(row: NewNarInfo, fetched: boolean): Promise<void> {
    const slot = await this.slots.acquire('prefetch');
    if (!slot) {
      this.metrics.prefetch('dropped');
      this.logger.debug({ hash: row.hash }, 'NAR prefetch dropped: too many downloads waiting');
      return;
    }
    let download: Download;
    try {
      download = this.downloader.downloadFor(row, slot, { fresh: fetched }).download;
    } catch (e) {
      this.metrics.prefetch('failed');
      slot.release();
      this.logger.warn({ hash: row.hash, err: (e as Error).message }, 'NAR prefetch did not start');
      return;
    }
    await download.ready;
    this.metrics.prefetch(download.foundInStorage ? 'already_stored' : download.state === 'failed' ? 'failed' : 'started');
  }
}
