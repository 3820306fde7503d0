import { Global, Module } from '@nestjs/common';
import { Registry, collectDefaultMetrics } from 'prom-client';

/**
 * One Prometheus registry per application (never prom-client's global one, so several apps can run
 * in one test process). Each domain registers its own metrics on it (cache/, cache/download/, lru/,
 * locking/, upstream/, warm/). Deliberately light — no database, no HTTP, no domain — so any module
 * (or `ncps lru run`) can import it; /metrics is served by PrometheusModule.
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
  ],
  exports: [Registry],
})
export class MetricsModule {}
