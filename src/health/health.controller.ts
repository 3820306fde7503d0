import { Controller, Get, Header, Req, Res } from '@nestjs/common';
import { FastifyReply, FastifyRequest } from 'fastify';
import { HealthDetailsPolicy } from './health-details.policy';
import { HealthProbe } from './health-probe.service';

/** What anyone may read: up or down, and the names of what is down. */
export type PublicHealth = { status: 'ok' } | { status: 'error'; down: string[] };

@Controller()
export class HealthController {
  constructor(
    private readonly probe: HealthProbe,
    private readonly details: HealthDetailsPolicy,
  ) {}

  /**
   * Every dependency, probed for real (at most once a second): 200 when all required ones answer,
   * else 503. Operators (see HealthDetailsPolicy) get Terminus' full report, whose `error` section
   * says why each dependency is down; everyone else gets only the status and the names.
   */
  @Get('health')
  @Header('cache-control', 'no-store')
  async check(@Req() req: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    const { up, down, report } = await this.probe.run();
    const body: PublicHealth = up ? { status: 'ok' } : { status: 'error', down };
    await reply.status(up ? 200 : 503).send(this.details.allows(req) ? report : body);
  }

  /** Liveness only: the process answers. Cheap enough for a load balancer to probe every second. */
  @Get('healthz')
  @Header('content-type', 'text/plain; charset=utf-8')
  healthz(): string {
    return 'ok\n';
  }
}
