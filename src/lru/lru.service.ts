import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import { NcpsConfig } from 'src/config/config';
import { NCPS_CONFIG } from 'src/config/config.module';
import { ArtifactRepository, NarFileRepository, NarInfoRepository } from 'src/database';
import { LockPort, LRU_LOCK_KEY } from 'src/locking';
import { PinsService } from 'src/pins';
import { StoragePort } from 'src/storage';
import { LruPass, LruSummary } from './lru.pass';
import { LruMetrics } from './lru.metrics';

export type LruRunResult = { ran: false } | ({ ran: true } & LruSummary);

/**
 * Keeps the stored NARs within `--cache-max-size`. A run happens under the cluster-wide LRU lock,
 * taken without waiting: when another instance holds it, that instance is already doing the work.
 */
@Injectable()
export class LruService {
  private readonly logger = new Logger('LRU');

  constructor(
    @Inject(NCPS_CONFIG) private readonly config: NcpsConfig,
    private readonly narInfos: NarInfoRepository,
    private readonly narFiles: NarFileRepository,
    private readonly storage: StoragePort,
    private readonly locks: LockPort,
    private readonly pins: PinsService,
    // Optional so that unit tests need not fake them; Nest always provides both.
    @Optional() private readonly metrics?: LruMetrics,
    @Optional() private readonly artifacts?: ArtifactRepository,
  ) {}

  /** One eviction pass. `signal` stops it between two evictions (shutdown). */
  async runOnce(signal?: AbortSignal): Promise<LruRunResult> {
    const maxSize = this.config.cache.maxSizeBytes;
    if (maxSize === undefined) throw new Error('LRU eviction needs --cache-max-size');
    const started = Date.now();
    try {
      const result = await this.locks.tryWithLock(LRU_LOCK_KEY, this.config.lock.lruTtlMs, (lease) => {
        const stop = signal ? AbortSignal.any([lease.signal, signal]) : lease.signal;
        const deps = {
          narInfos: this.narInfos,
          narFiles: this.narFiles,
          storage: this.storage,
          locks: this.locks,
          pins: this.pins,
          artifacts: this.artifacts,
        };
        return new LruPass(deps, maxSize, stop).run();
      });
      if (!result.acquired) {
        // docs/ha.md's troubleshooting greps for this exact line.
        this.logger.log('another instance is running LRU');
        this.metrics?.runSkipped();
        return { ran: false };
      }
      const summary = result.value;
      if (summary.interrupted) this.logger.warn('LRU run stopped early: the LRU lock was lost or ncps is shutting down');
      this.logger.log(
        {
          evicted_entries: summary.evictedEntries,
          evicted_nar_files: summary.evictedNarFiles,
          evicted_bytes: summary.evictedBytes,
          size_before: summary.sizeBefore,
          size_after: summary.sizeAfter,
          max_size: maxSize,
          duration_ms: Date.now() - started,
        },
        'LRU run finished',
      );
      this.metrics?.runFinished(summary);
      return { ran: true, ...summary };
    } catch (e) {
      this.metrics?.runFailed();
      throw e;
    }
  }
}
