export { LockPort } from './lock.port';
export type { LockLease, LockMode, LockBackendStatus, TryLockResult } from './lock.port';
export { LockingModule } from './locking.module';
export { LockHealthIndicator } from './lock.health';
export { LRU_LOCK_KEY, downloadNarKey, downloadNarInfoKey, narReadKey, narKeyHash } from './lock.keys';
