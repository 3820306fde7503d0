import { LockUnavailableError } from 'src/common/errors';
import { LockBackendStatus, LockLease, LockPort, TryLockResult } from '../lock.port';
import { LockTelemetry } from '../lock.telemetry';
import { KeyedRwMutex, Release } from './local.rw-mutex';

/** A local holder cannot lose its lock (there is no backend to lose it to), so its signal never aborts. */
const LOCAL_LEASE: LockLease = { signal: new AbortController().signal };

/**
 * The `local` backend: in-memory locks for a single instance. Waiting is queueing (a release hands the
 * lock to the next waiter at once), bounded by the lock's TTL like every other backend.
 */
export class LocalLockProvider extends LockPort {
  private readonly mutex = new KeyedRwMutex();

  constructor(private readonly telemetry: LockTelemetry) {
    super();
  }

  /** Keys currently held or waited for (entries are dropped when idle). */
  get activeKeys(): number {
    return this.mutex.size;
  }

  override withLock<T>(key: string, ttlMs: number, fn: (lease: LockLease) => Promise<T>): Promise<T> {
    return this.waitAndRun(key, ttlMs, false, fn);
  }

  override withReadLock<T>(key: string, ttlMs: number, fn: (lease: LockLease) => Promise<T>): Promise<T> {
    return this.waitAndRun(key, ttlMs, true, fn);
  }

  override async tryWithLock<T>(key: string, _ttlMs: number, fn: (lease: LockLease) => Promise<T>): Promise<TryLockResult<T>> {
    const release = this.mutex.tryAcquire(key, false);
    if (!release) {
      this.telemetry.busy(key, 'local');
      return { acquired: false };
    }
    this.telemetry.acquired(key, 'local', 0, 0);
    return { acquired: true, value: await this.hold(key, release, fn) };
  }

  override status(): LockBackendStatus {
    return { backend: 'local', mode: 'local', reachable: true };
  }

  override async check(): Promise<void> {
    // Nothing to reach.
  }

  override async close(): Promise<void> {
    // Holds no connections.
  }

  private async waitAndRun<T>(key: string, ttlMs: number, shared: boolean, fn: (lease: LockLease) => Promise<T>): Promise<T> {
    const started = Date.now();
    const release = await this.mutex.acquire(key, shared, started + ttlMs);
    if (!release) {
      this.telemetry.failed(key, 'local', 'timeout', Date.now() - started, 0);
      throw new LockUnavailableError(`timed out after ${ttlMs} ms waiting for lock ${key}`, 'timeout');
    }
    this.telemetry.acquired(key, 'local', Date.now() - started, 0);
    return this.hold(key, release, fn);
  }

  private async hold<T>(key: string, release: Release, fn: (lease: LockLease) => Promise<T>): Promise<T> {
    const acquiredAt = Date.now();
    try {
      return await fn(LOCAL_LEASE);
    } finally {
      release();
      this.telemetry.released(key, 'local', Date.now() - acquiredAt);
    }
  }
}
