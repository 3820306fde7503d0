import { Counter, Histogram, Registry } from 'prom-client';
import { LockMode } from './lock.port';
import { KNOWN_LOCK_TYPES } from './lock.keys';

/**
 * `reason` of ncps_lock_failures_total. docs/ha.md names timeout, redis_error and circuit_breaker; the
 * PostgreSQL backend reports postgres_error, and a lock lost while held (extension failed, session
 * lost) is `lost`.
 */
export type LockFailureReason = 'timeout' | 'redis_error' | 'postgres_error' | 'circuit_breaker' | 'lost';

/** The lock metrics (docs/ha.md), registered on the application's registry. */
export class LockMetrics {
  readonly acquisitions: Counter<'type' | 'result' | 'mode'>;
  readonly holdDuration: Histogram<'type' | 'mode'>;
  readonly failures: Counter<'type' | 'reason' | 'mode'>;
  readonly retryAttempts: Counter<'type'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.acquisitions = new Counter({
      name: 'ncps_lock_acquisitions_total',
      help: 'Lock acquisition attempts by lock type, result (success/failure) and mode (local/distributed/degraded)',
      labelNames: ['type', 'result', 'mode'],
      registers,
    });
    this.holdDuration = new Histogram({
      name: 'ncps_lock_hold_duration_seconds',
      help: 'Time locks are held, by lock type and mode',
      labelNames: ['type', 'mode'],
      // From a served read (milliseconds) to a long download or LRU run (minutes).
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 1800],
      registers,
    });
    this.failures = new Counter({
      name: 'ncps_lock_failures_total',
      help: 'Lock failures by lock type, reason (timeout, redis_error, postgres_error, circuit_breaker, lost) and mode',
      labelNames: ['type', 'reason', 'mode'],
      registers,
    });
    this.retryAttempts = new Counter({
      name: 'ncps_lock_retry_attempts_total',
      help: 'Lock acquisition retries (a held lock waited for, or a backend error retried), by lock type',
      labelNames: ['type'],
      registers,
    });
  }

  /** Creates the series of the known lock types at 0, so rates and alerts work before the first event. */
  prime(modes: readonly LockMode[], reasons: readonly LockFailureReason[]): void {
    for (const type of KNOWN_LOCK_TYPES) {
      this.retryAttempts.labels({ type }).inc(0);
      for (const mode of modes) {
        this.acquisitions.labels({ type, result: 'success', mode }).inc(0);
        this.acquisitions.labels({ type, result: 'failure', mode }).inc(0);
        this.holdDuration.zero({ type, mode });
        for (const reason of reasons) this.failures.labels({ type, reason, mode }).inc(0);
      }
    }
  }
}
