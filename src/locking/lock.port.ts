/**
 * Locks that coordinate work inside one process (local) or across instances (redis, postgres).
 * Callers never pair acquire/release by hand: they pass a closure, and the lock is released in
 * `finally`. Keys are given without the configured prefix (e.g. `download:nar:<hash>`, `lru`).
 */
export interface LockLease {
  /** Aborted when the lock is lost while `fn` still runs (extension failed, session lost). */
  readonly signal: AbortSignal;
}

export type TryLockResult<T> = { acquired: true; value: T } | { acquired: false };

export type LockMode = 'local' | 'distributed' | 'degraded';

export interface LockBackendStatus {
  backend: 'local' | 'redis' | 'postgres';
  mode: LockMode;
  reachable: boolean;
  /** State of the circuit breaker in front of a distributed backend. */
  breaker?: 'closed' | 'open' | 'half-open';
  detail?: string;
}

export abstract class LockPort {
  /**
   * Runs `fn` holding the exclusive lock `key`. Waits while another holder has it (woken when it is
   * released); throws LockUnavailableError when the backend is unusable or the wait exceeds `ttlMs`.
   * The lock is extended while `fn` runs, so `fn` may outlive `ttlMs`.
   */
  abstract withLock<T>(key: string, ttlMs: number, fn: (lease: LockLease) => Promise<T>): Promise<T>;
  /** Runs `fn` only if the exclusive lock can be taken at once. */
  abstract tryWithLock<T>(key: string, ttlMs: number, fn: (lease: LockLease) => Promise<T>): Promise<TryLockResult<T>>;
  /** Runs `fn` holding a shared lock on `key`: readers run together, writers wait for them. */
  abstract withReadLock<T>(key: string, ttlMs: number, fn: (lease: LockLease) => Promise<T>): Promise<T>;
  abstract status(): LockBackendStatus;
  /** Probes the backend (used by /health); throws with an explanation when unreachable. */
  abstract check(): Promise<void>;
  abstract close(): Promise<void>;
}
