import { Global, Module } from '@nestjs/common';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { LRU_METRICS } from 'src/lru';
import { CacheMetrics } from './cache.metrics';
import { LruMetrics } from './lru.metrics';

/**
 * One Prometheus registry per application (never prom-client's global one, so several apps can run
 * in one test process), and the metrics of the domains that record through this folder (cache, LRU).
 * Other domains register their own metrics on the registry. Deliberately light — no database, no
 * HTTP — so any module (or `ncps lru run`) can import it; /metrics is served by PrometheusModule.
 */
@Global()
@Module({
  providers: [
    {
      provide: Registry,
      useFactory: () => {
        const registry = new Registry();
        collectDefaultMetrics({ register: registry });
        return registry;
      },
    },
    CacheMetrics,
    LruMetrics,
    { provide: LRU_METRICS, useExisting: LruMetrics },
  ],
  exports: [Registry, CacheMetrics, LruMetrics, LRU_METRICS],
})
export class MetricsModule {}
