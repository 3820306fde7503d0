import { Inject, Injectable } from '@nestjs/common';
import { HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import { NcpsConfig } from 'src/config/config';
import { NCPS_CONFIG } from 'src/config/config.module';
import { LockPort } from './lock.port';
import { errorMessage } from 'src/common/error-fields';

/**
 * `/health` entry of the lock backend: its name, mode (local / distributed / degraded), whether lock
 * operations work, and the circuit breaker's state. A distributed backend is judged by what requests
 * see: the breaker (opened by failing acquisitions) and an acquire/release probe of a health key, not
 * only a PING. When locks fail it is `down` (503) unless degraded mode is allowed, in which case locks
 * fall back to local ones and the entry stays `up` with mode `degraded`.
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
      problem = errorMessage(error);
    }
    const { backend, mode, detail, breaker } = this.lock.status();
    const extra = breaker ? { breaker } : {};
    if (!problem) return indicator.up({ backend, mode, reachable: true, ...extra, ...(detail ? { detail } : {}) });
    if (this.config.lock.allowDegradedMode) return indicator.up({ backend, mode: 'degraded', reachable: false, ...extra, detail: problem });
    return indicator.down({ backend, mode, reachable: false, ...extra, detail: problem });
  }
}
