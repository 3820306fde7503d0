import { Logger } from '@nestjs/common';
import { LockMode } from './lock.port';
import { lockLogFields, lockType } from './lock.keys';
import { LockFailureReason, LockMetrics } from './lock.metrics';

/** What the lock providers report: each event is counted and logged in one place, with the names docs/ha.md documents. */
export class LockTelemetry {
  private readonly logger = new Logger('Locks');

  constructor(private readonly metrics: LockMetrics) {}

  acquired(key: string, mode: LockMode, waitedMs: number, retries: number): void {
    const type = lockType(key);
    this.metrics.acquisitions.labels({ type, result: 'success', mode }).inc();
    const fields = { ...lockLogFields(key), mode, duration_ms: Math.round(waitedMs), retries };
    if (type === 'download') this.logger.log(fields, 'acquired download lock');
    else this.logger.debug(fields, 'acquired lock');
  }

  /** tryWithLock found the lock held: contention, not a failure of the backend. */
  busy(key: string, mode: LockMode): void {
    this.metrics.acquisitions.labels({ type: lockType(key), result: 'failure', mode }).inc();
    this.logger.debug({ ...lockLogFields(key), mode }, 'lock is held elsewhere');
  }

  failed(key: string, mode: LockMode, reason: LockFailureReason, waitedMs: number, retries: number, cause?: string): void {
    const type = lockType(key);
    this.metrics.acquisitions.labels({ type, result: 'failure', mode }).inc();
    this.metrics.failures.labels({ type, reason, mode }).inc();
    const fields = { ...lockLogFields(key), mode, reason, duration_ms: Math.round(waitedMs), retries, ...(cause ? { error: cause } : {}) };
    this.logger.warn(fields, 'failed to acquire lock');
  }

  retried(key: string): void {
    this.metrics.retryAttempts.labels({ type: lockType(key) }).inc();
  }

  released(key: string, mode: LockMode, heldMs: number): void {
    this.metrics.holdDuration.labels({ type: lockType(key), mode }).observe(heldMs / 1000);
  }

  /** The lock was lost while its holder still ran: another instance may now hold it too. */
  lost(key: string, mode: LockMode, heldMs: number, cause: string): void {
    this.metrics.failures.labels({ type: lockType(key), reason: 'lost', mode }).inc();
    this.logger.error({ ...lockLogFields(key), mode, held_ms: Math.round(heldMs), cause }, 'lock lost while held');
  }
}
