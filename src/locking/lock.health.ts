import { Inject, Injectable } from '@nestjs/common';
import { HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import { NcpsConfig } from 'src/config/config';
import { NCPS_CONFIG } from 'src/config/config.module';
import { LockPort } from './lock.port';

/**
 * `/health` entry of the lock backend: its name, mode (local / distributed / degraded) and whether it
 * answers. An unreachable distributed backend is `down` (503) unless degraded mode is allowed, in which
 * case locks fall back to local ones and the entry stays `up` with mode `degraded`.
 */
@Injectable()
export class LockHealthIndicator {
  constructor(
    private readonly lock: LockPort,
    private readonly health: HealthIndicatorService,
    @Inject(NCPS_CONFIG) private readonly config: NcpsConfig,
  ) {}

  async isHealthy(key = 'locks'): Promise<HealthIndicatorResult> {
    const indicator = this.health.check(key);
    let problem: string | undefined;
    try {
      await this.lock.check();
    } catch (error) {
      problem = error instanceof Error ? error.message : String(error);
    }
    const { backend, mode, detail } = this.lock.status();
    if (!problem) return indicator.up({ backend, mode, reachable: true, ...(detail ? { detail } : {}) });
    if (this.config.lock.allowDegradedMode) return indicator.up({ backend, mode: 'degraded', reachable: false, detail: problem });
    return indicator.down({ backend, mode, reachable: false, detail: problem });
  }
}
