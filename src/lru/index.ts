export { LruModule } from './lru.module';
export { LruService, type LruRunResult } from './lru.service';
export type { LruSummary } from './lru.pass';
export { LruMetrics } from './lru.metrics';
export { LruMetricsModule } from './lru-metrics.module';
export { narReadLockKey, openUnderReadLock } from './lru.read-lock';
