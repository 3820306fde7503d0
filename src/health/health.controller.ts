import { Controller, Get, Header, Res, ServiceUnavailableException } from '@nestjs/common';
import { HealthCheckResult, HealthCheckService } from '@nestjs/terminus';
import { FastifyReply } from 'fastify';
import { DatabaseHealthIndicator } from 'src/database';
import { StorageHealthIndicator } from 'src/storage';
import { LockHealthIndicator } from 'src/locking';
import { UpstreamHealthIndicator } from 'src/upstream';

/** Terminus' report, plus one line naming what is down (what an operator reads in a probe's log). */
export type HealthReport = HealthCheckResult & { reason?: string };

@Controller()
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly database: DatabaseHealthIndicator,
    private readonly storage: StorageHealthIndicator,
    private readonly locks: LockHealthIndicator,
    private readonly upstreams: UpstreamHealthIndicator,
  ) {}

  /**
   * Every dependency, probed for real: 200 when all required ones answer, else 503 with the report
   * (Terminus' JSON, whose `error` section names each dependency that is down and why).
   */
  @Get('health')
  @Header('cache-control', 'no-store')
  async check(@Res() reply: FastifyReply): Promise<void> {
    let status = 200;
    let report: HealthReport;
    try {
      report = await this.health.check([
        () => this.database.check(),
        () => this.storage.check(),
        () => this.locks.isHealthy(),
        () => this.upstreams.check(),
      ]);
    } catch (e) {
      // Terminus reports "down" by throwing its report inside a 503; the report is the answer.
      if (!(e instanceof ServiceUnavailableException)) throw e;
      status = 503;
      report = e.getResponse() as HealthCheckResult;
      report.reason = `down: ${Object.keys(report.error ?? {}).join(', ')}`;
    }
    await reply.status(status).send(report);
  }

  /** Liveness only: the process answers. Cheap enough for a load balancer to probe every second. */
  @Get('healthz')
  @Header('content-type', 'text/plain; charset=utf-8')
  healthz(): string {
    return 'ok\n';
  }
}
