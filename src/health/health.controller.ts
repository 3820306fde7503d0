import { Controller, Get, Header } from '@nestjs/common';
import { HealthCheck, HealthCheckService } from '@nestjs/terminus';
import { DatabaseHealthIndicator } from 'src/database';
import { StorageHealthIndicator } from 'src/storage';
import { LockHealthIndicator } from 'src/locking';

@Controller()
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly database: DatabaseHealthIndicator,
    private readonly storage: StorageHealthIndicator,
    private readonly locks: LockHealthIndicator,
  ) {}

  /** Every dependency, probed for real: 503 with the reason when one that is required is down. */
  @Get('health')
  @HealthCheck()
  check() {
    return this.health.check([() => this.database.check(), () => this.storage.check(), () => this.locks.check()]);
  }

  /** Liveness only: the process answers. Cheap enough for a load balancer to probe every second. */
  @Get('healthz')
  @Header('content-type', 'text/plain; charset=utf-8')
  healthz(): string {
    return 'ok\n';
  }
}
