import { Inject, Injectable, OnModuleDestroy, OnModuleInit, Optional } from '@nestjs/common';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { NcpsConfig } from 'src/config/config';
import { NCPS_CONFIG } from 'src/config/config.module';
import { DownloadRegistry } from 'src/cache/download/download-registry';
import { HealthProbe } from 'src/health/health-probe.service';
import { LruMetrics } from 'src/lru';
import { SAMPLE_INTERVAL_MS, Sample, StatusHistory } from './status.history';
import { StatusCheck, StatusView } from './status.render';
import { configSummary } from './status.config';

/** The clock the sampler reads (injectable so tests need no sleeps). */
export const STATUS_CLOCK = Symbol('STATUS_CLOCK');
export type Clock = () => number;

/** The version in the nearest package.json above this file (src/status or dist/src/status). */
function packageVersion(): string {
  for (const up of ['../..', '../../..']) {
    try {
      return (JSON.parse(readFileSync(join(__dirname, up, 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      // try the next candidate
    }
  }
  return 'unknown';
}

async function sum(registry: Registry, name: string, where: (labels: Record<string, unknown>) => boolean = () => true): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) return 0;
  // get() runs the metric's collect hook (ncps_cache_requests_total counts lazily there).
  const { values } = await metric.get();
  return values.filter((v) => where(v.labels)).reduce((total, v) => total + v.value, 0);
}

/**
 * Samples the counters the status page charts, once a minute on a timer (never per request), and
 * builds the page's view on demand from the registry, the running downloads and the health probe.
 */
@Injectable()
export class StatusService implements OnModuleInit, OnModuleDestroy {
  readonly history = new StatusHistory();
  private readonly startedAt: number;
  private readonly version = packageVersion();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    @Inject(NCPS_CONFIG) private readonly config: NcpsConfig,
    private readonly registry: Registry,
    private readonly downloads: DownloadRegistry,
    private readonly health: HealthProbe,
    private readonly lru: LruMetrics,
    @Optional() @Inject(STATUS_CLOCK) private readonly clock: Clock = Date.now,
  ) {
    this.startedAt = this.clock();
  }

  async onModuleInit(): Promise<void> {
    await this.sample();
    this.timer = setInterval(() => void this.sample().catch(() => undefined), SAMPLE_INTERVAL_MS);
    this.timer.unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.timer);
  }

  /** Records the current totals in the history (what the timer calls). */
  async sample(): Promise<void> {
    this.history.record(await this.totals());
  }

  async totals(): Promise<Sample> {
    const [hits, misses, servedBytes, fetchedBytes] = await Promise.all([
      sum(this.registry, 'ncps_cache_requests_total', (l) => l.result === 'hit'),
      sum(this.registry, 'ncps_cache_requests_total', (l) => l.result === 'miss'),
      sum(this.registry, 'ncps_served_bytes_total'),
      sum(this.registry, 'ncps_fetched_bytes_total'),
    ]);
    return { at: this.clock(), hits, misses, servedBytes, fetchedBytes };
  }

  async view(): Promise<StatusView> {
    const [now, stored, probe] = await Promise.all([
      this.totals(),
      this.registry.getSingleMetric('ncps_stored_bytes') ? sum(this.registry, 'ncps_stored_bytes') : Promise.resolve(undefined),
      this.health.run().catch(() => undefined),
    ]);
    const details = (probe?.report.details ?? {}) as Record<string, Record<string, unknown>>;
    const checks: StatusCheck[] = Object.entries(details).map(([name, result]) => ({
      name,
      status: typeof result.status === 'string' ? result.status : 'unknown',
      details: Object.fromEntries(
        Object.entries(result)
          .filter(([k, v]) => k !== 'status' && ['string', 'number', 'boolean'].includes(typeof v))
          .map(([k, v]) => [k, String(v)]),
      ),
    }));
    return {
      version: this.version,
      now: new Date(now.at),
      uptimeSeconds: (now.at - this.startedAt) / 1000,
      config: configSummary(this.config),
      intervals: this.history.intervals(now),
      storedBytes: stored,
      maxSizeBytes: this.config.cache.maxSizeBytes,
      downloads: this.downloads.list().map((d) => ({ key: d.key, written: d.written, expected: d.expectedSize })),
      checks,
      lastLru: this.lru.lastRun,
      refreshSeconds: 10,
      servedCounted: this.config.prometheusEnabled,
    };
  }
}
