import { randomBytes } from 'node:crypto';
import { Logger } from '@nestjs/common';
import { LockUnavailableError } from 'src/common/errors';
import { backoffDelay, RetryPolicy } from '../lock.backoff';
import { BreakerState, CircuitBreaker, CircuitBreakerOptions } from '../circuit-breaker';
import { LockFailureReason } from '../lock.metrics';
import { LockBackendStatus, LockLease, LockMode, LockPort, TryLockResult } from '../lock.port';
import { LockTelemetry } from '../lock.telemetry';
import { lockLogFields } from '../lock.keys';
import { DriverLease, LockBackendError, LockDriver } from './lock.driver';
import { KeyedRwMutex } from './local.rw-mutex';
import { ReleaseWatch } from './release.signals';
import { errorMessage } from 'src/common/error-fields';

export interface DistributedLockOptions {
  allowDegradedMode: boolean;
  /** Polling between wake-ups, and retries of backend errors (`maxAttempts` of them per acquisition). */
  retry: RetryPolicy;
  breaker: Pick<CircuitBreakerOptions, 'failureThreshold' | 'cooldownMs'>;
  /** Every this often, a lock on this instance's health key is taken and given back (none when unset). */
  probeIntervalMs?: number;
}

/** A probe result this recent answers /health without another round trip. */
const PROBE_FRESH_MS = 1000;
const PROBE_TTL_MS = 5000;

/** Acquired without the backend: the breaker is open (or the backend failed) and degraded mode is allowed. */
const DEGRADED = Symbol('degraded');
type Holding = DriverLease | typeof DEGRADED;

const BACKEND_NAMES = { redis: 'Redis', postgres: 'PostgreSQL' } as const;

/**
 * A LockPort over a distributed backend (Redis or PostgreSQL).
 *
 * - Holders of this process queue in front, on an in-process read/write lock: only one of them contends
 *   for a key on the backend at a time, and a PostgreSQL session (reentrant) never grants one key twice.
 * - A waiter sleeps until a release wakes it (pub/sub, NOTIFY) or its backoff delay passes — polling is
 *   only the fallback for releases nobody announces (a holder that vanished). It waits no longer than the
 *   lock's TTL: contention alone never fails a request sooner.
 * - Backend errors are retried `retry.maxAttempts` times and feed the circuit breaker. While the breaker
 *   is open, locks are local (degraded mode allowed) or refused at once.
 */
export class DistributedLock extends LockPort {
  private readonly logger = new Logger('Locks');
  private readonly local = new KeyedRwMutex();
  private readonly breaker: CircuitBreaker;
  private readonly failureReason: LockFailureReason;
  private lastError: string | undefined;
  /** The health key of this instance: probes never contend with other instances' probes. */
  private readonly healthKey = `health:${randomBytes(6).toString('hex')}`;
  private probing: Promise<void> | undefined;
  private probedAt = 0;
  /** Why the last probe failed; undefined after a successful one. */
  private probeError: string | undefined;
  private readonly probeTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly driver: LockDriver,
    private readonly telemetry: LockTelemetry,
    private readonly options: DistributedLockOptions,
  ) {
    super();
    this.failureReason = `${driver.backend}_error`;
    this.breaker = new CircuitBreaker(options.breaker, (state, previous) => this.breakerChanged(state, previous));
    if (options.probeIntervalMs) {
      this.probeTimer = setInterval(() => void this.probe(), options.probeIntervalMs);
      this.probeTimer.unref();
    }
  }

  override async withLock<T>(key: string, ttlMs: number, fn: (lease: LockLease) => Promise<T>): Promise<T> {
    return this.acquiredValue(await this.run(key, ttlMs, false, true, fn));
  }

  override tryWithLock<T>(key: string, ttlMs: number, fn: (lease: LockLease) => Promise<T>): Promise<TryLockResult<T>> {
    return this.run(key, ttlMs, false, false, fn);
  }

  override async withReadLock<T>(key: string, ttlMs: number, fn: (lease: LockLease) => Promise<T>): Promise<T> {
    return this.acquiredValue(await this.run(key, ttlMs, true, true, fn));
  }

  /**
   * What requests see: the backend is reachable while the breaker is closed (real acquisitions
   * succeed) and the last probe succeeded.
   */
  override status(): LockBackendStatus {
    const breaker = this.breaker.state;
    const reachable = breaker === 'closed' && !this.probeError;
    const detail =
      breaker !== 'closed'
        ? `circuit breaker ${breaker}${this.lastError ? `: ${this.lastError}` : ''}`
        : this.probeError && `lock probe failed: ${this.probeError}`;
    return {
      backend: this.driver.backend,
      mode: !reachable && this.options.allowDegradedMode ? 'degraded' : 'distributed',
      reachable,
      breaker,
      ...(detail ? { detail } : {}),
    };
  }

  /**
   * For /health: throws when the backend's own check fails (servers that do not answer PING, a Redis
   * Cluster master down), and while lock operations fail although it answers: the breaker is not
   * closed (requests are refused or failing), or an acquire/release of the health key failed.
   * Probes again unless the last probe succeeded less than a second ago.
   */
  override async check(): Promise<void> {
    // A failed probe is not trusted for long either: the backend may be back (a request just used it).
    if (this.probeError || Date.now() - this.probedAt >= PROBE_FRESH_MS) await this.probe();
    // The backend's own words first: they name the servers that do not answer.
    await this.driver.check();
    const { reachable, detail } = this.status();
    if (!reachable) throw new LockBackendError(detail ?? 'lock backend unreachable');
  }

  /** Waits (bounded) for the backend's first connection. */
  ready(timeoutMs: number): Promise<void> {
    return this.driver.ready(timeoutMs);
  }

  override async close(): Promise<void> {
    clearInterval(this.probeTimer);
    await this.probing;
    await this.driver.close();
  }

  /**
   * Takes and gives back this instance's health key, as a request would take a lock. The outcome feeds
   * the breaker, so an outage is noticed without traffic, and after the cool-down the probe is the
   * trial that closes the breaker again. While the breaker refuses, there is nothing to probe.
   */
  private probe(): Promise<void> {
    this.probing ??= (async () => {
      if (!this.breaker.tryPass()) return;
      const contention = this.driver.contend(this.healthKey, PROBE_TTL_MS, false, false);
      try {
        // Held (null) cannot happen to a key of our own; it would still prove the backend answers.
        await (await contention.attempt())?.release();
        this.probeError = undefined;
        this.breaker.success();
      } catch (error) {
        this.probeError = this.lastError = errorMessage(error);
        this.breaker.failure();
      } finally {
        await contention.end();
      }
    })().finally(() => {
      this.probedAt = Date.now();
      this.probing = undefined;
    });
    return this.probing;
  }

  private acquiredValue<T>(result: TryLockResult<T>): T {
    // A waiting acquisition either succeeds or throws.
    if (!result.acquired) throw new Error('unreachable: a waiting acquisition returned without the lock');
    return result.value;
  }

  private async run<T>(
    key: string,
    ttlMs: number,
    shared: boolean,
    waiting: boolean,
    fn: (lease: LockLease) => Promise<T>,
  ): Promise<TryLockResult<T>> {
    const attempt = { key, started: Date.now(), deadline: Date.now() + ttlMs, retries: 0 };
    if (this.breaker.refusing && !this.options.allowDegradedMode) throw this.fail(attempt, 'circuit_breaker');

    const releaseLocal = waiting ? await this.local.acquire(key, shared, attempt.deadline) : this.local.tryAcquire(key, shared);
    if (!releaseLocal) {
      if (waiting) throw this.fail(attempt, 'timeout');
      this.telemetry.busy(key, 'distributed');
      return { acquired: false };
    }
    try {
      const holding = await this.acquire(attempt, ttlMs, shared, waiting);
      if (!holding) {
        this.telemetry.busy(key, 'distributed');
        return { acquired: false };
      }
      const mode: LockMode = holding === DEGRADED ? 'degraded' : 'distributed';
      this.telemetry.acquired(key, mode, Date.now() - attempt.started, attempt.retries);
      return { acquired: true, value: await this.hold(key, mode, holding, fn) };
    } finally {
      releaseLocal();
    }
  }

  /** Contends on the backend: a lease, DEGRADED, or null when a single try found the lock held. */
  private async acquire(attempt: Attempt, ttlMs: number, shared: boolean, waiting: boolean): Promise<Holding | null> {
    const contention = this.driver.contend(attempt.key, ttlMs, shared, waiting);
    const watch = waiting ? new ReleaseWatch((listener) => this.driver.onRelease(attempt.key, listener)) : undefined;
    let errors = 0;
    let waits = 0;
    try {
      for (;;) {
        if (!this.breaker.tryPass()) {
          if (this.options.allowDegradedMode) return DEGRADED;
          throw this.fail(attempt, 'circuit_breaker');
        }
        watch?.arm();
        let lease: DriverLease | null;
        try {
          lease = await contention.attempt();
          this.breaker.success();
        } catch (error) {
          this.lastError = errorMessage(error);
          this.breaker.failure();
          errors += 1;
          // Retrying is pointless once the breaker is open (this failure, or a concurrent one, opened it).
          const open = this.breaker.refusing;
          if (open || errors > this.options.retry.maxAttempts || Date.now() >= attempt.deadline) {
            if (!this.options.allowDegradedMode) throw this.fail(attempt, this.failureReason, this.lastError);
            // An opening breaker says this itself, once.
            if (!open)
              this.logger.warn({ ...lockLogFields(attempt.key), backend: this.driver.backend, error: this.lastError }, 'using local locks');
            return DEGRADED;
          }
          await this.pause(attempt, backoffDelay(errors - 1, this.options.retry));
          continue;
        }
        if (lease || !watch) return lease;
        if (Date.now() >= attempt.deadline) throw this.fail(attempt, 'timeout');
        await this.pause(attempt, backoffDelay(waits++, this.options.retry), watch);
      }
    } finally {
      watch?.close();
      await contention.end();
    }
  }

  /** Sleeps before the next attempt (never past the deadline); a release cuts a contended wait short. */
  private async pause(attempt: Attempt, delayMs: number, watch?: ReleaseWatch): Promise<void> {
    attempt.retries += 1;
    this.telemetry.retried(attempt.key);
    const ms = Math.max(0, Math.min(delayMs, attempt.deadline - Date.now()));
    if (watch) await watch.sleep(ms);
    else await new Promise((resolve) => setTimeout(resolve, ms));
  }

  private async hold<T>(key: string, mode: LockMode, holding: Holding, fn: (lease: LockLease) => Promise<T>): Promise<T> {
    const acquiredAt = Date.now();
    const controller = new AbortController();
    const lost = holding === DEGRADED ? undefined : holding.lost;
    const onLost = (): void => {
      const cause = errorMessage(lost?.reason);
      this.telemetry.lost(key, mode, Date.now() - acquiredAt, cause);
      controller.abort(new LockUnavailableError(`lock ${key} was lost while held: ${cause}`, 'lost'));
    };
    if (lost?.aborted) onLost();
    else lost?.addEventListener('abort', onLost, { once: true });
    try {
      return await fn({ signal: controller.signal });
    } finally {
      lost?.removeEventListener('abort', onLost);
      if (holding !== DEGRADED) await this.giveBack(key, holding);
      this.telemetry.released(key, mode, Date.now() - acquiredAt);
    }
  }

  private async giveBack(key: string, lease: DriverLease): Promise<void> {
    try {
      await lease.release();
    } catch (error) {
      this.lastError = errorMessage(error);
      this.breaker.failure();
      // Not the caller's problem: its work is done, and the lock expires (Redis) or went with the session.
      this.logger.warn({ ...lockLogFields(key), backend: this.driver.backend, error: this.lastError }, 'failed to release lock');
    }
  }

  /** Reports the failure (the log gets the backend's own words) and makes the error for the caller. */
  private fail(attempt: Attempt, reason: LockFailureReason, cause?: string): LockUnavailableError {
    this.telemetry.failed(attempt.key, 'distributed', reason, Date.now() - attempt.started, attempt.retries, cause);
    switch (reason) {
      case 'timeout':
        return new LockUnavailableError(`timed out after ${Date.now() - attempt.started} ms waiting for lock ${attempt.key}`, 'timeout');
      case 'circuit_breaker':
        return new LockUnavailableError(`lock backend ${this.driver.backend} is unavailable (circuit breaker open)`, 'circuit_breaker');
      default:
        // Not the cause itself: the message may reach a client, the cause names hosts and ports.
        return new LockUnavailableError(`lock backend ${this.driver.backend} is unavailable`, 'backend_error');
    }
  }

  private breakerChanged(state: BreakerState, previous: BreakerState): void {
    const name = BACKEND_NAMES[this.driver.backend];
    const fields = { backend: this.driver.backend, error: this.lastError };
    if (state === 'open' && previous === 'closed') {
      this.logger.error({ ...fields, cooldown_ms: this.options.breaker.cooldownMs }, `circuit breaker open: ${name} is unavailable`);
      if (this.options.allowDegradedMode) {
        this.logger.warn({ ...fields, mode: 'degraded' }, 'using local locks');
      }
    } else if (state === 'closed') {
      this.logger.log({ backend: this.driver.backend }, `circuit breaker closed: ${name} is available again`);
    }
  }
}

interface Attempt {
  readonly key: string;
  readonly started: number;
  readonly deadline: number;
  retries: number;
}
