import { Logger } from '@nestjs/common';
import { Registry } from 'prom-client';
import { LockUnavailableError } from 'src/common/errors';
import { LockMetrics } from '../lock.metrics';
import { LockTelemetry } from '../lock.telemetry';
import { DistributedLock, DistributedLockOptions } from './distributed.lock';
import { Contention, DriverLease, LockBackendError, LockDriver } from './lock.driver';
import { ReleaseSignals } from './release.signals';
import { sleep, until } from 'test/support/wait';

/** An in-memory backend whose availability and release announcements the tests control. */
class FakeDriver implements LockDriver {
  readonly backend = 'redis';
  readonly holders = new Map<string, { writer: boolean; readers: number }>();
  readonly signals = new ReleaseSignals();
  attempts = 0;
  down = false;
  /** Lock operations fail while PING still answers (a cluster missing a master, a full server, ...). */
  locksFail = false;
  announceReleases = true;
  readonly leases = new Set<AbortController>();

  contend(key: string, _ttlMs: number, shared: boolean): Contention {
    return {
      attempt: async () => {
        this.attempts += 1;
        await sleep(1);
        if (this.down) throw new LockBackendError('connect ECONNREFUSED 127.0.0.1:6379');
        if (this.locksFail) throw new LockBackendError('CLUSTERDOWN Hash slot not served');
        const holder = this.holders.get(key) ?? { writer: false, readers: 0 };
        if (holder.writer || (!shared && holder.readers > 0)) return null;
        if (shared) holder.readers += 1;
        else holder.writer = true;
        this.holders.set(key, holder);
        return this.lease(key, shared);
      },
      end: async () => undefined,
    };
  }

  /** Another instance takes the lock (and later gives it back with `releaseForeign`). */
  holdForeign(key: string): void {
    this.holders.set(key, { writer: true, readers: 0 });
  }

  releaseForeign(key: string): void {
    this.holders.delete(key);
    if (this.announceReleases) this.signals.notify(key);
  }

  onRelease(key: string, listener: () => void): () => void {
    return this.signals.listen(key, listener);
  }

  async ready(): Promise<void> {}
  async check(): Promise<void> {
    if (this.down) throw new LockBackendError('Redis unreachable');
  }
  async close(): Promise<void> {}

  private lease(key: string, shared: boolean): DriverLease {
    const controller = new AbortController();
    this.leases.add(controller);
    return {
      lost: controller.signal,
      release: async () => {
        this.leases.delete(controller);
        if (this.down) throw new LockBackendError('connection is closed');
        const holder = this.holders.get(key);
        if (holder && shared) holder.readers -= 1;
        if (holder && !shared) holder.writer = false;
        if (holder && !holder.writer && holder.readers === 0) this.holders.delete(key);
        if (this.announceReleases) this.signals.notify(key);
      },
    };
  }
}

describe('DistributedLock', () => {
  let registry: Registry;
  let driver: FakeDriver;
  let logs: Array<[string, unknown, unknown]>;

  const make = (options: Partial<DistributedLockOptions> = {}): DistributedLock =>
    new DistributedLock(driver, new LockTelemetry(new LockMetrics(registry)), {
      allowDegradedMode: false,
      retry: { maxAttempts: 2, initialDelayMs: 10, maxDelayMs: 20, jitter: false },
      breaker: { failureThreshold: 3, cooldownMs: 200 },
      ...options,
    });

  beforeAll(() => Logger.overrideLogger(false));

  beforeEach(() => {
    registry = new Registry();
    driver = new FakeDriver();
    logs = [];
    for (const level of ['log', 'warn', 'error', 'debug'] as const) {
      jest.spyOn(Logger.prototype, level).mockImplementation((...args: unknown[]) => {
        logs.push([level, args[0], args[1]]);
      });
    }
  });

  afterEach(() => jest.restoreAllMocks());

  const messages = (): unknown[] => logs.map(([, , message]) => message);

  it('runs fn under the backend lock and releases it', async () => {
    const sut = make();
    await expect(sut.withLock('download:nar:h', 1000, async () => driver.holders.get('download:nar:h')?.writer)).resolves.toBe(true);
    expect(driver.holders.size).toBe(0);
    expect(logs).toContainEqual([
      'log',
      expect.objectContaining({ lock_type: 'download:nar', hash: 'h', retries: 0 }),
      'acquired download lock',
    ]);
  });

  it('queues holders of this process in front: only one of them contends on the backend', async () => {
    const sut = make();
    driver.holdForeign('k');
    const started = Date.now();
    const waiters = Array.from({ length: 10 }, () => sut.withLock('k', 5000, async () => undefined));
    await sleep(50);
    const attemptsWhileHeld = driver.attempts;
    const polls = Math.ceil((Date.now() - started) / 20);
    driver.releaseForeign('k');
    await Promise.all(waiters);
    // One waiter polled (every 20 ms after 10, for 50 ms or however long a loaded machine took), the nine
    // others queued in-process without touching the backend: ten pollers would make ten times as many.
    expect(attemptsWhileHeld).toBeLessThanOrEqual(polls + 2);
  });

  it('wakes a waiter as soon as the holder releases, long before its next poll', async () => {
    const sut = make({ retry: { maxAttempts: 2, initialDelayMs: 5000, maxDelayMs: 5000, jitter: false } });
    driver.holdForeign('k');
    const waiter = sut.withLock('k', 20_000, async () => Date.now());
    await sleep(50);
    const released = Date.now();
    const polls = driver.attempts;
    driver.releaseForeign('k');
    // The next poll is 5 s away: only the release announcement can have let it in this soon.
    expect((await waiter) - released).toBeLessThan(2500);
    expect(driver.attempts).toBe(polls + 1);
  });

  it('falls back to polling when nobody announces the release', async () => {
    driver.announceReleases = false;
    const sut = make({ retry: { maxAttempts: 2, initialDelayMs: 50, maxDelayMs: 50, jitter: false } });
    driver.holdForeign('k');
    const waiter = sut.withLock('k', 5000, async () => Date.now());
    await until(() => driver.attempts >= 1);
    const polls = driver.attempts;
    driver.releaseForeign('k');
    await waiter;
    // Nobody announced the release: a poll found the lock free.
    expect(driver.attempts).toBeGreaterThan(polls);
  });

  it('waits no longer than the TTL, then fails with a timeout', async () => {
    const sut = make();
    driver.holdForeign('lru');
    const started = Date.now();
    await expect(sut.withLock('lru', 1000, async () => undefined)).rejects.toMatchObject({ reason: 'timeout' });
    // Not before the TTL, and not much after it (the default retry keeps polling, so the TTL is what ends it).
    expect(Date.now() - started).toBeGreaterThanOrEqual(990);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(await registry.metrics()).toContain('ncps_lock_failures_total{type="lru",reason="timeout",mode="distributed"} 1');
  });

  it('tries once with tryWithLock', async () => {
    const sut = make();
    driver.holdForeign('lru');
    await expect(sut.tryWithLock('lru', 1000, async () => 1)).resolves.toEqual({ acquired: false });
    expect(driver.attempts).toBe(1);
  });

  it('retries backend errors max-attempts times, then fails with the backend error', async () => {
    const sut = make();
    driver.down = true;
    const error = await sut.withLock('download:nar:h', 5000, async () => undefined).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LockUnavailableError);
    expect(error).toMatchObject({ reason: 'backend_error' });
    expect(driver.attempts).toBe(3);
    expect(await registry.metrics()).toContain('ncps_lock_failures_total{type="download",reason="redis_error",mode="distributed"} 1');
  });

  describe('circuit breaker without degraded mode', () => {
    it('opens after repeated failures and then fails fast without touching the backend', async () => {
      const sut = make({ retry: { maxAttempts: 0, initialDelayMs: 10, maxDelayMs: 10, jitter: false } });
      driver.down = true;
      for (let i = 0; i < 3; i++)
        await expect(sut.withLock('k', 1000, async () => undefined)).rejects.toMatchObject({ reason: 'backend_error' });
      expect(messages()).toContain('circuit breaker open: Redis is unavailable');
      expect(messages()).not.toContain('using local locks');
      const attempts = driver.attempts;
      await expect(sut.withLock('k', 1000, async () => undefined)).rejects.toMatchObject({ reason: 'circuit_breaker' });
      await expect(sut.withReadLock('k', 1000, async () => undefined)).rejects.toMatchObject({ reason: 'circuit_breaker' });
      expect(driver.attempts).toBe(attempts);
      expect(sut.status()).toMatchObject({ backend: 'redis', mode: 'distributed', reachable: false });
    });

    it('closes again when a trial succeeds after the cool-down', async () => {
      const sut = make({ retry: { maxAttempts: 0, initialDelayMs: 10, maxDelayMs: 10, jitter: false } });
      driver.down = true;
      for (let i = 0; i < 3; i++) await sut.withLock('k', 1000, async () => undefined).catch(() => undefined);
      driver.down = false;
      await sleep(210);
      await expect(sut.withLock('k', 1000, async () => 'ok')).resolves.toBe('ok');
      expect(sut.status()).toMatchObject({ mode: 'distributed', reachable: true });
      expect(messages()).toContain('circuit breaker closed: Redis is available again');
    });
  });

  describe('degraded mode', () => {
    it('keeps serving with local locks while the backend is down, and says so loudly', async () => {
      const sut = make({ allowDegradedMode: true });
      driver.down = true;
      await expect(sut.withLock('k', 1000, async () => 'served')).resolves.toBe('served');
      for (let i = 0; i < 3; i++) await sut.withLock('k', 1000, async () => undefined);
      expect(logs).toContainEqual(['error', expect.objectContaining({ backend: 'redis' }), 'circuit breaker open: Redis is unavailable']);
      expect(logs).toContainEqual(['warn', expect.objectContaining({ mode: 'degraded' }), 'using local locks']);
      expect(sut.status()).toMatchObject({ mode: 'degraded', reachable: false });

      // Still mutually exclusive within the instance.
      let inside = 0;
      let most = 0;
      await Promise.all(
        Array.from({ length: 10 }, () =>
          sut.withLock('k', 5000, async () => {
            most = Math.max(most, ++inside);
            await sleep(2);
            inside -= 1;
          }),
        ),
      );
      expect(most).toBe(1);
      expect(await registry.metrics()).toMatch(/ncps_lock_acquisitions_total\{type="k",result="success",mode="degraded"\} \d+/);
    });

    it('returns to distributed locks when the backend is back', async () => {
      const sut = make({ allowDegradedMode: true, retry: { maxAttempts: 0, initialDelayMs: 10, maxDelayMs: 10, jitter: false } });
      driver.down = true;
      for (let i = 0; i < 3; i++) await sut.withLock('k', 1000, async () => undefined);
      driver.down = false;
      await sleep(210);
      await expect(sut.withLock('k', 1000, async () => driver.holders.get('k')?.writer)).resolves.toBe(true);
      expect(sut.status().mode).toBe('distributed');
    });
  });

  it('aborts the lease signal when the backend loses the lock, and counts it', async () => {
    const sut = make();
    const reason = await sut.withLock('download:nar:h', 1000, async ({ signal }) => {
      for (const lease of driver.leases) lease.abort(new Error('the lock expired or was taken before it could be extended'));
      expect(signal.aborted).toBe(true);
      return signal.reason as unknown;
    });
    expect(reason).toBeInstanceOf(LockUnavailableError);
    expect(reason).toMatchObject({ reason: 'lost' });
    expect(logs).toContainEqual(['error', expect.objectContaining({ lock_type: 'download:nar' }), 'lock lost while held']);
    expect(await registry.metrics()).toContain('ncps_lock_failures_total{type="download",reason="lost",mode="distributed"} 1');
  });

  it('does not fail the caller when the release cannot reach the backend', async () => {
    const sut = make();
    await expect(
      sut.withLock('k', 1000, async () => {
        driver.down = true;
        return 'done';
      }),
    ).resolves.toBe('done');
    expect(messages()).toContain('failed to release lock');
  });
  describe('health: what requests see', () => {
    it('reports acquisitions failing even while the backend answers PING', async () => {
      const sut = make();
      await expect(sut.check()).resolves.toBeUndefined();
      driver.locksFail = true;
      // A successful probe is reused for a second; the next check probes again.
      await expect(sut.check()).resolves.toBeUndefined();
      await sleep(1000);
      await expect(sut.check()).rejects.toThrow('lock probe failed: CLUSTERDOWN Hash slot not served');
      // A failed one is not reused: the backend may be back.
      driver.locksFail = false;
      await expect(sut.check()).resolves.toBeUndefined();
      driver.locksFail = true;
      await sleep(1000);
      await expect(sut.check()).rejects.toThrow('lock probe failed');
      expect(sut.status()).toMatchObject({
        reachable: false,
        breaker: 'closed',
        detail: 'lock probe failed: CLUSTERDOWN Hash slot not served',
      });
      for (let i = 0; i < 3; i++) await sut.withLock('k', 1000, async () => undefined).catch(() => undefined);
      expect(sut.status()).toMatchObject({ reachable: false, breaker: 'open' });
      await expect(sut.check()).rejects.toThrow(/^circuit breaker open: CLUSTERDOWN/);
    });

    it('probes the health key on its own: notices an outage without traffic, and recovers after the cool-down', async () => {
      const sut = make({ probeIntervalMs: 20 });
      try {
        await until(() => driver.attempts >= 2);
        expect(driver.holders.size).toBe(0); // every probe gave its lock back
        driver.locksFail = true;
        const failing = Date.now();
        await until(() => sut.status().breaker === 'open');
        expect(Date.now() - failing).toBeLessThan(4000); // three probes, 20 ms apart
        expect(sut.status()).toMatchObject({ reachable: false, breaker: 'open' });
        expect(messages()).toContain('circuit breaker open: Redis is unavailable');
        driver.locksFail = false;
        const recovering = Date.now();
        // After the cool-down (200 ms), a probe is the trial that closes the breaker.
        await until(() => sut.status().breaker === 'closed');
        expect(Date.now() - recovering).toBeGreaterThanOrEqual(150);
        expect(sut.status()).toEqual({ backend: 'redis', mode: 'distributed', reachable: true, breaker: 'closed' });
        await expect(sut.check()).resolves.toBeUndefined();
      } finally {
        await sut.close();
      }
    });

    it('does not probe while the breaker refuses calls', async () => {
      const sut = make({ breaker: { failureThreshold: 1, cooldownMs: 10_000 } });
      driver.locksFail = true;
      await expect(sut.check()).rejects.toThrow();
      const attempts = driver.attempts;
      await sleep(1100);
      await expect(sut.check()).rejects.toThrow('circuit breaker open');
      expect(driver.attempts).toBe(attempts);
    });

    it('reports degraded, not unreachable-and-refusing, when degraded mode is allowed', async () => {
      const sut = make({ allowDegradedMode: true });
      driver.locksFail = true;
      await expect(sut.check()).rejects.toThrow();
      expect(sut.status()).toMatchObject({ mode: 'degraded', reachable: false });
    });
  });
});
