export { LruModule } from './lru.module';
export { LruService, type LruRunResult } from './lru.service';
export type { LruSummary } from './lru.pass';
export { LRU_METRICS, type LruRunRecorder } from './lru.metrics';
export { narReadLockKey, openUnderReadLock } from './lru.read-lock';
