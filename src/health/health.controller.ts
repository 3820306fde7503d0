import { Controller, Get, Header } from '@nestjs/common';
import { HealthCheck, HealthCheckService } from '@nestjs/terminus';
import { DatabaseHealthIndicator } from 'src/database';
import { StorageHealthIndicator } from 'src/storage';
import { LockHealthIndicator } from 'src/locking';
import { UpstreamHealthIndicator } from 'src/upstream';

@Controller()
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly database: DatabaseHealthIndicator,
    private readonly storage: StorageHealthIndicator,
    private readonly locks: LockHealthIndicator,
    private readonly upstreams: UpstreamHealthIndicator,
  ) {}

  /** Every dependency, probed for real: 503 with the reason when one that is required is down. */
  @Get('health')
  @HealthCheck()
  check() {
    return this.health.check([
      () => this.database.check(),
      () => this.storage.check(),
      () => this.locks.isHealthy(),
      () => this.upstreams.check(),
    ]);
  }

  /** Liveness only: the process answers. Cheap enough for a load balancer to probe every second. */
  @Get('healthz')
  @Header('content-type', 'text/plain; charset=utf-8')
  healthz(): string {
    return 'ok\n';
  }
}
