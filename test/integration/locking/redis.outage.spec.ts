import { Logger } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { NcpsConfig } from 'src/config/config';
import { LockPort } from 'src/locking';
import { createLockPort } from 'src/locking/lock.factory';
import { LockHealthIndicator } from 'src/locking/lock.health';
import { RedisLockDriver } from 'src/locking/providers/redis.driver';
import { PrivateRedis } from 'test/support/lock-redis-server';
import { lockTestConfig, sleep } from 'test/support/lock-services';

/** A private redis-server is killed under running instances, then comes back on the same port. */
describe('redis lock backend when Redis goes away', () => {
  const retry = { maxAttempts: 1, initialDelayMs: 10, maxDelayMs: 50, jitter: false };
  const breaker = { failureThreshold: 3, cooldownMs: 1000 };
  let server: PrivateRedis;
  let strict: LockPort;
  let degraded: LockPort;
  let logs: Array<[string, unknown]>;

  const open = async (allowDegradedMode: boolean): Promise<{ lock: LockPort; health: LockHealthIndicator }> => {
    const config = lockTestConfig('redis', { keyPrefix: 'ncps:lock:', redisAddrs: [server.address], retry, allowDegradedMode });
    const lock = await createLockPort(config, new Registry(), { breaker });
    return { lock, health: new LockHealthIndicator(lock, new HealthIndicatorService(), config as NcpsConfig) };
  };

  beforeAll(async () => {
    Logger.overrideLogger(false);
    server = await PrivateRedis.start();
  });
  afterAll(async () => {
    await strict?.close();
    await degraded?.close();
    await server.destroy();
  });
  beforeEach(() => {
    logs = [];
    for (const level of ['log', 'warn', 'error'] as const) {
      jest.spyOn(Logger.prototype, level).mockImplementation((...args: unknown[]) => void logs.push([level, args[1]]));
    }
  });
  afterEach(() => jest.restoreAllMocks());

  it('trips the breaker: fails fast without degraded mode, serves with local locks with it, and recovers', async () => {
    const a = await open(false);
    const b = await open(true);
    strict = a.lock;
    degraded = b.lock;
    await expect(strict.withLock('lru', 5000, async () => 'ok')).resolves.toBe('ok');
    await expect(degraded.withLock('lru', 5000, async () => 'ok')).resolves.toBe('ok');
    await expect(a.health.isHealthy()).resolves.toMatchObject({ locks: { status: 'up', backend: 'redis', mode: 'distributed' } });

    await server.stop();

    // Without degraded mode: errors (each call retries once) until the breaker opens, then refusals that cost nothing.
    await expect(strict.withLock('lru', 5000, async () => undefined)).rejects.toMatchObject({ reason: 'backend_error' });
    await expect(strict.withLock('lru', 5000, async () => undefined)).rejects.toMatchObject({ name: 'LockUnavailableError' });
    // Refusals that cost nothing: the open breaker answers without asking Redis.
    const contend = jest.spyOn(RedisLockDriver.prototype, 'contend');
    await expect(strict.withLock('lru', 5000, async () => undefined)).rejects.toMatchObject({ reason: 'circuit_breaker' });
    await expect(strict.tryWithLock('lru', 5000, async () => undefined)).rejects.toMatchObject({
      name: 'LockUnavailableError',
      reason: 'circuit_breaker',
    });
    expect(contend).not.toHaveBeenCalled();
    contend.mockRestore();
    expect(logs).toContainEqual(['error', 'circuit breaker open: Redis is unavailable']);
    await expect(a.health.isHealthy()).resolves.toMatchObject({ locks: { status: 'down', backend: 'redis', reachable: false } });

    // With degraded mode: every call is served, with local locks that still exclude within the instance.
    let inside = 0;
    let most = 0;
    await Promise.all(
      Array.from({ length: 10 }, () =>
        degraded.withLock('download:nar:d', 5000, async () => {
          most = Math.max(most, ++inside);
          await sleep(2);
          inside -= 1;
        }),
      ),
    );
    expect(most).toBe(1);
    await expect(degraded.withReadLock('cache:nar:d', 5000, async () => 'read')).resolves.toBe('read');
    expect(logs).toContainEqual(['warn', 'using local locks']);
    expect(degraded.status()).toMatchObject({ mode: 'degraded', reachable: false });
    await expect(b.health.isHealthy()).resolves.toMatchObject({ locks: { status: 'up', mode: 'degraded', reachable: false } });

    // Redis comes back: after the cool-down, the next lock is distributed again.
    await server.start();
    const client = new Redis(server.port, '127.0.0.1');
    try {
      const deadline = Date.now() + 10_000;
      let seenInRedis = 0;
      while (!seenInRedis && Date.now() < deadline) {
        await sleep(200);
        seenInRedis = await degraded.withLock('lru', 5000, () => client.exists('ncps:lock:lru'));
      }
      expect(seenInRedis).toBe(1);
      expect(degraded.status()).toMatchObject({ mode: 'distributed', reachable: true });
      expect(logs).toContainEqual(['log', 'circuit breaker closed: Redis is available again']);
      await expect(strict.withLock('lru', 5000, async () => 'back')).resolves.toBe('back');
    } finally {
      await client.quit();
    }
  });
});
