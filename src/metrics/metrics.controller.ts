import { Controller, Get, Inject, Res } from '@nestjs/common';
import { FastifyReply } from 'fastify';
import { Registry } from 'prom-client';
import { NotFoundError } from 'src/common/errors';
import { NcpsConfig } from 'src/config/config';
import { NCPS_CONFIG } from 'src/config/config.module';

/** GET /metrics in Prometheus' text format, with --prometheus-enabled; 404 otherwise. */
@Controller()
export class MetricsController {
  constructor(
    @Inject(NCPS_CONFIG) private readonly config: NcpsConfig,
    private readonly registry: Registry,
  ) {}

  @Get('metrics')
  async metrics(@Res() reply: FastifyReply): Promise<void> {
    // The route always exists so that /metrics never falls through to the narinfo route (400).
    if (!this.config.prometheusEnabled) throw new NotFoundError('metrics are disabled (--prometheus-enabled)');
    const text = await this.registry.metrics();
    await reply.header('content-type', this.registry.contentType).send(text);
  }
}
