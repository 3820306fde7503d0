import { Module } from '@nestjs/common';
import { CacheModule } from 'src/cache/cache.module';
import { DatabaseModule } from 'src/database';
import { DownloadMetrics } from './download.metrics';
import { HttpMetrics } from './http.metrics';
import { CacheLimitMetrics } from './limit.metrics';
import { MetricsController } from './metrics.controller';
import { StoredDataMetrics } from './stored.metrics';

/**
 * GET /metrics (404 without --prometheus-enabled), and the metrics measured from outside the domains:
 * HTTP requests and bodies, stored data and its limit, NAR downloads. Needs the global MetricsModule and ConfigModule.
 */
@Module({
  imports: [DatabaseModule, CacheModule],
  controllers: [MetricsController],
  providers: [HttpMetrics, StoredDataMetrics, DownloadMetrics, CacheLimitMetrics],
})
export class PrometheusModule {}
