import { RetryPolicy, retry } from 'src/common/retry';

/**
 * Errors after which running the same transaction again can succeed: the server chose it as a
 * deadlock victim or could not serialize it, or SQLite found the database locked by another
 * connection for longer than the busy timeout (or could not upgrade a read snapshot to a write).
 */
const RETRYABLE_CODES = new Set([
  '40001', // PostgreSQL serialization_failure
  '40P01', // PostgreSQL deadlock_detected
  'ER_LOCK_DEADLOCK', // MySQL/MariaDB 1213: the transaction was rolled back
  'ER_LOCK_WAIT_TIMEOUT', // MySQL/MariaDB 1205
  'SQLITE_BUSY',
  'SQLITE_BUSY_SNAPSHOT',
  'SQLITE_BUSY_RECOVERY',
  'SQLITE_LOCKED',
]);

const ATTEMPTS = 5;
const BASE_DELAY_MS = 20;

/** TypeORM wraps the driver's error in QueryFailedError and copies its fields; accept both. */
export function isRetryableDatabaseError(error: unknown): boolean {
  const candidates = [error, (error as { driverError?: unknown } | null)?.driverError];
  return candidates.some((e) => {
    const code = (e as { code?: unknown } | null | undefined)?.code;
    return typeof code === 'string' && RETRYABLE_CODES.has(code);
  });
}

const POLICY: RetryPolicy = {
  attempts: ATTEMPTS,
  retryable: isRetryableDatabaseError,
  // Full jitter around an exponential backoff: contenders that collided once should not collide again in lockstep.
  delayMs: (attempt) => {
    const delay = BASE_DELAY_MS * 2 ** (attempt - 1);
    return delay / 2 + Math.random() * delay;
  },
};

/**
 * Runs `work` and runs it again (up to 5 times, with jittered exponential backoff from 20 ms) when it
 * fails with a deadlock, serialization or busy error. `work` must be a whole transaction or a single
 * statement: after such an error PostgreSQL and MySQL have rolled back everything since BEGIN, so
 * retrying one statement inside a transaction would be wrong.
 */
export function withRetry<T>(work: () => Promise<T>): Promise<T> {
  return retry(work, POLICY);
}
