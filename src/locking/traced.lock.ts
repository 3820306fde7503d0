import type { SpanAttributes, Tracing } from 'src/telemetry';
import { lockLogFields } from './lock.keys';
import { LockBackendStatus, LockLease, LockPort, TryLockResult } from './lock.port';

/**
 * A LockPort whose waits are traced: each acquisition is a `lock.wait` span (key type, hash, shared
 * or exclusive) that ends once the lock is held; what runs under the lock belongs to the caller's
 * span. Installed only when tracing is enabled (see tracedLocks), so untraced locks pay nothing.
 */
class TracedLockPort extends LockPort {
  constructor(
    private readonly inner: LockPort,
    private readonly tracing: Tracing,
  ) {
    super();
  }

  withLock<T>(key: string, ttlMs: number, fn: (lease: LockLease) => Promise<T>): Promise<T> {
    return this.tracing.waiting('lock.wait', this.attributes(key, 'exclusive'), (held) =>
      this.inner.withLock(key, ttlMs, (lease) => held(() => fn(lease))),
    );
  }

  tryWithLock<T>(key: string, ttlMs: number, fn: (lease: LockLease) => Promise<T>): Promise<TryLockResult<T>> {
    return this.tracing.waiting('lock.wait', this.attributes(key, 'exclusive'), (held) =>
      this.inner.tryWithLock(key, ttlMs, (lease) => held(() => fn(lease))),
    );
  }

  withReadLock<T>(key: string, ttlMs: number, fn: (lease: LockLease) => Promise<T>): Promise<T> {
    return this.tracing.waiting('lock.wait', this.attributes(key, 'shared'), (held) =>
      this.inner.withReadLock(key, ttlMs, (lease) => held(() => fn(lease))),
    );
  }

  status(): LockBackendStatus {
    return this.inner.status();
  }

  check(): Promise<void> {
    return this.inner.check();
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  private attributes(key: string, kind: 'exclusive' | 'shared'): SpanAttributes {
    const { lock_type, hash } = lockLogFields(key);
    const backend = this.inner.status().backend;
    return { 'ncps.lock.type': lock_type, 'ncps.lock.hash': hash, 'ncps.lock.kind': kind, 'ncps.lock.backend': backend };
  }
}

/** `port` itself when tracing is off (or absent, as in CLI commands), else `port` with its waits traced. */
export function tracedLocks(port: LockPort, tracing: Tracing | undefined): LockPort {
  return tracing?.enabled ? new TracedLockPort(port, tracing) : port;
}
