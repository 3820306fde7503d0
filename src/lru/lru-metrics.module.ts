import { Module } from '@nestjs/common';
import { LruMetrics } from './lru.metrics';

/**
 * LruMetrics on its own: LruModule comes in two shapes (plain, and `scheduled()`, a distinct module
 * instance), and /status reads the runs the scheduled one records, so both import this one instance.
 * Needs the global prom-client Registry (MetricsModule).
 */
@Module({
  providers: [LruMetrics],
  exports: [LruMetrics],
})
export class LruMetricsModule {}
