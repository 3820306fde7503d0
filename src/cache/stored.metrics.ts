import { Injectable, Logger } from '@nestjs/common';
import { Gauge, Registry } from 'prom-client';
import { NarFileRepository, NarInfoRepository } from 'src/database';

/** Scrapes within this long reuse the last figures: every instance is scraped, the database is shared. */
export const STORED_SAMPLE_TTL_MS = 5_000;

interface StoredSample {
  bytes: number;
  narinfos: number;
  nars: number;
}

/**
 * How much the cache holds (database figures, shared by every instance), read on scrape and reused
 * for STORED_SAMPLE_TTL_MS. While the database is unreachable the last figures stay (the outage is
 * /health's to report, not a reason to fail the whole scrape).
 */
@Injectable()
export class StoredDataMetrics {
  private readonly logger = new Logger('Metrics');
  private last: StoredSample | undefined;
  private takenAt = 0;
  private pending: Promise<StoredSample | undefined> | undefined;

  constructor(
    registry: Registry,
    private readonly narFiles: NarFileRepository,
    private readonly narInfos: NarInfoRepository,
  ) {
    const sample = () => this.sample();
    const registers = [registry];
    new Gauge({
      name: 'ncps_stored_bytes',
      help: 'Total size of the stored NAR files (what --cache-max-size limits)',
      registers,
      async collect() {
        const figures = await sample();
        if (figures) this.set(figures.bytes);
      },
    });
    new Gauge({
      name: 'ncps_stored_entries',
      help: 'Stored entries by kind (narinfo, nar)',
      labelNames: ['kind'],
      registers,
      async collect() {
        const figures = await sample();
        if (!figures) return;
        this.set({ kind: 'narinfo' }, figures.narinfos);
        this.set({ kind: 'nar' }, figures.nars);
      },
    });
  }

  private sample(): Promise<StoredSample | undefined> {
    if (this.last && Date.now() - this.takenAt < STORED_SAMPLE_TTL_MS) return Promise.resolve(this.last);
    // Both gauges ask at once on a scrape: one query round serves them.
    this.pending ??= this.query().finally(() => (this.pending = undefined));
    return this.pending;
  }

  private async query(): Promise<StoredSample | undefined> {
    try {
      const [bytes, narinfos, nars] = await Promise.all([
        this.narFiles.sumStoredBytes(),
        this.narInfos.count(),
        this.narFiles.countStored(),
      ]);
      this.last = { bytes, narinfos, nars };
      this.takenAt = Date.now();
    } catch (e) {
      this.logger.debug({ err: (e as Error).message }, 'stored data figures unavailable; keeping the last ones');
    }
    return this.last;
  }
}
