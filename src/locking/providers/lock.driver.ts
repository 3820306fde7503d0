/**
 * What a distributed backend (Redis, PostgreSQL) provides to DistributedLock, which adds everything
 * the backends share: in-process queueing in front, waiting with wake-ups and backoff, the circuit
 * breaker, degraded mode, metrics and logs. Internal to src/locking: callers only see LockPort.
 */
export type DistributedBackend = 'redis' | 'postgres';

/** The backend could not be reached or answered with an error (as opposed to: the lock is held). */
export class LockBackendError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LockBackendError';
  }
}

/** A lock held on the backend. The driver keeps it alive (extension, session) until `release`. */
export interface DriverLease {
  /** Aborted, with the cause as reason, when the backend lost the lock before `release`. */
  readonly lost: AbortSignal;
  /** Gives the lock back and wakes waiters; throws LockBackendError when the backend cannot be reached. */
  release(): Promise<void>;
}

/** One caller's acquisition of one key: attempted until won or given up, then ended. */
export interface Contention {
  /** One attempt: the lease, or null when the lock is held elsewhere. Throws LockBackendError. */
  attempt(): Promise<DriverLease | null>;
  /** Gives up what this contention holds besides a lease (a waiting writer's claim). Never throws. */
  end(): Promise<void>;
}

export interface LockDriver {
  readonly backend: DistributedBackend;
  /**
   * Starts contending for `key`. `waiting` writers announce themselves so that new readers hold back
   * (writers are not starved by a stream of readers); a single try does not.
   */
  contend(key: string, ttlMs: number, shared: boolean, waiting: boolean): Contention;
  /** Calls `listener` whenever any instance releases `key`; returns the unsubscribe function. */
  onRelease(key: string, listener: () => void): () => void;
  /** Waits (at most `timeoutMs`) for the first connection, so the first locks after start do not fail. */
  ready(timeoutMs: number): Promise<void>;
  /** A cheap real round trip; throws LockBackendError explaining what is wrong. */
  check(): Promise<void>;
  close(): Promise<void>;
}
