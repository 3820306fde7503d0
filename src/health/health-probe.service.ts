import { Injectable, ServiceUnavailableException } from '@nestjs/common';
import { HealthCheckResult, HealthCheckService } from '@nestjs/terminus';
import { DatabaseHealthIndicator } from 'src/database';
import { StorageHealthIndicator } from 'src/storage';
import { LockHealthIndicator } from 'src/locking';
import { UpstreamHealthIndicator } from 'src/upstream';
import { ClusterHealthIndicator } from 'src/cluster';
import { sharedRun } from './shared-run';

/** Terminus' report, plus one line naming what is down (what an operator reads in a probe's log). */
export type HealthReport = HealthCheckResult & { reason?: string };

export interface HealthOutcome {
  up: boolean;
  /** Names of the dependencies that are down, in report order. */
  down: string[];
  report: HealthReport;
}

/** How long one probe run answers for: /health polled by many clients costs one run a second. */
export const HEALTH_PROBE_TTL_MS = 1000;

/**
 * Probes every dependency for real (a query, a storage round trip, a lock backend ping). Calls within
 * HEALTH_PROBE_TTL_MS of a run, or while one is in flight, share it.
 */
@Injectable()
export class HealthProbe {
  readonly run: () => Promise<HealthOutcome>;

  constructor(
    private readonly health: HealthCheckService,
    private readonly database: DatabaseHealthIndicator,
    private readonly storage: StorageHealthIndicator,
    private readonly locks: LockHealthIndicator,
    private readonly upstreams: UpstreamHealthIndicator,
    private readonly cluster: ClusterHealthIndicator,
  ) {
    this.run = sharedRun(() => this.probe(), HEALTH_PROBE_TTL_MS);
  }

  private async probe(): Promise<HealthOutcome> {
    try {
      const report = await this.health.check([
        () => this.database.check(),
        () => this.storage.check(),
        () => this.locks.isHealthy(),
        () => this.upstreams.check(),
        () => this.cluster.report(),
      ]);
      return { up: true, down: [], report };
    } catch (e) {
      // Terminus reports "down" by throwing its report inside a 503; the report is the answer.
      if (!(e instanceof ServiceUnavailableException)) throw e;
      const report = e.getResponse() as HealthReport;
      const down = Object.keys(report.error ?? {});
      report.reason = `down: ${down.join(', ')}`;
      return { up: false, down, report };
    }
  }
}
