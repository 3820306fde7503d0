import { Module } from '@nestjs/common';
import { HttpMetrics } from './http.metrics';
import { MetricsController } from './metrics.controller';

/**
 * GET /metrics (404 without --prometheus-enabled), and the one family measured across domains: HTTP
 * requests and the bodies sent. Needs the global MetricsModule and ConfigModule.
 */
@Module({
  controllers: [MetricsController],
  providers: [HttpMetrics],
})
export class PrometheusModule {}
