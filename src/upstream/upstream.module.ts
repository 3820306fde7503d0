import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { UpstreamHealthIndicator } from './upstream.health';
import { UPSTREAM_PROVIDERS } from './upstream.providers';
import { UpstreamService } from './upstream.service';

/** The upstream caches. Needs the global NCPS_CONFIG and prom-client Registry (ConfigModule, MetricsModule). */
@Module({
  imports: [TerminusModule],
  providers: [...UPSTREAM_PROVIDERS, UpstreamService, UpstreamHealthIndicator],
  exports: [UpstreamService, UpstreamHealthIndicator],
})
export class UpstreamModule {}
