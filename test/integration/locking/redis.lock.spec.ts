import { Logger } from '@nestjs/common';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { LockPort } from 'src/locking';
import { RetryPolicy } from 'src/locking/lock.backoff';
import { createLockPort } from 'src/locking/lock.factory';
import { PrivateRedis } from 'test/support/lock-redis-server';
import { deleteRedisKeys, lockTestConfig, sleep, testKeyPrefix } from 'test/support/lock-services';
import { describeLockConformance, LockFixture } from './lock.conformance';

function redisFixture(): LockFixture {
  const keyPrefix = testKeyPrefix();
  const opened: LockPort[] = [];
  const open = async (retry?: RetryPolicy): Promise<LockPort> => {
    const port = await createLockPort(lockTestConfig('redis', { keyPrefix, retry }), new Registry());
    opened.push(port);
    return port;
  };
  return {
    instances: (count, retry) => Promise.all(Array.from({ length: count }, () => open(retry))),
    // An instance that holds the lock and then loses every connection without releasing it: the lock
    // lives on until its TTL runs out (between 2/3 and all of it, depending on the last extension).
    holdAndVanish: async (key, ttlMs) => {
      const crashing = await open();
      await new Promise<void>((entered) => {
        void crashing.withLock(key, ttlMs, () => {
          entered();
          return new Promise(() => undefined);
        });
      });
      return { vanish: () => crashing.close(), freedWithinMs: [ttlMs / 2, ttlMs + 1000] };
    },
    closeAll: async () => {
      await Promise.all(opened.map((port) => port.close()));
      await deleteRedisKeys(keyPrefix);
    },
  };
}

describeLockConformance('redis', redisFixture);

describe('redis provider', () => {
  let keyPrefix: string;
  let registry: Registry;
  let sut: LockPort;
  let redis: Redis;

  beforeAll(() => Logger.overrideLogger(false));
  beforeEach(async () => {
    keyPrefix = testKeyPrefix();
    registry = new Registry();
    sut = await createLockPort(lockTestConfig('redis', { keyPrefix }), registry);
    redis = new Redis(6379, '127.0.0.1');
  });
  afterEach(async () => {
    await sut.close();
    await redis.quit();
    await deleteRedisKeys(keyPrefix);
  });

  it('keeps the seed key layout: <prefix>download:nar:<hash> with a TTL, gone after release', async () => {
    await sut.withLock('download:nar:abc', 5000, async () => {
      expect(await redis.exists(`${keyPrefix}download:nar:abc`)).toBe(1);
      const ttl = await redis.pttl(`${keyPrefix}download:nar:abc`);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(5000);
    });
    expect(await redis.exists(`${keyPrefix}download:nar:abc`)).toBe(0);
    expect(sut.status()).toEqual({ backend: 'redis', mode: 'distributed', reachable: true });
    await expect(sut.check()).resolves.toBeUndefined();
  });

  it('leases a long-TTL lock in short renewed pieces, so a vanished holder blocks others for one lease, not the TTL', async () => {
    const leaseMaxMs = 1200;
    const ttlMs = 60_000;
    const leasing = await createLockPort(lockTestConfig('redis', { keyPrefix }), new Registry(), { redis: { leaseMaxMs } });
    const key = 'download:nar:leased';
    let holding!: () => void;
    const held = new Promise<void>((entered) => (holding = entered));
    void leasing.withLock(key, ttlMs, () => {
      holding();
      return new Promise(() => undefined);
    });
    await held;
    const pttl = await redis.pttl(`${keyPrefix}${key}`);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(leaseMaxMs);
    // Alive, the holder renews its lease past several lease lengths.
    await sleep(3 * leaseMaxMs);
    await expect(sut.tryWithLock(key, ttlMs, async () => undefined)).resolves.toEqual({ acquired: false });

    await leasing.close(); // gone without releasing: the lease runs out, long before the 60 s TTL
    const vanished = Date.now();
    const freedAfter = (await sut.withLock(key, ttlMs, async () => Date.now())) - vanished;
    expect(freedAfter).toBeGreaterThanOrEqual(leaseMaxMs / 2);
    expect(freedAfter).toBeLessThan(leaseMaxMs + 1000);
  });

  it('renews a reader\'s lease too: a NAR served for longer than a lease keeps the LRU out', async () => {
    const leaseMaxMs = 600;
    const reading = await createLockPort(lockTestConfig('redis', { keyPrefix }), new Registry(), { redis: { leaseMaxMs } });
    const key = 'cache:nar:long-read';
    let writerGotIn = 0;
    await reading.withReadLock(key, 60_000, async () => {
      for (let elapsed = 0; elapsed < 4 * leaseMaxMs; elapsed += 200) {
        if ((await sut.tryWithLock(key, 60_000, async () => undefined)).acquired) writerGotIn += 1;
        await sleep(200);
      }
    });
    await reading.close();
    expect(writerGotIn).toBe(0);
    await expect(sut.tryWithLock(key, 60_000, async () => 'after')).resolves.toEqual({ acquired: true, value: 'after' });
  });

  it('tracks each reader on its own, and forgets readers whose instance died', async () => {
    const readers = `${keyPrefix}cache:nar:h:readers`;
    await sut.withReadLock('cache:nar:h', 5000, async () => {
      await sut.withReadLock('cache:nar:h', 5000, async () => {
        expect(await redis.zcard(readers)).toBe(2);
      });
    });
    expect(await redis.zcard(readers)).toBe(0);

    const [seconds] = await redis.time();
    await redis.zadd(readers, Number(seconds) * 1000 + 1500, 'reader-of-a-dead-instance');
    const started = Date.now();
    await sut.withLock('cache:nar:h', 10_000, async () => undefined);
    expect(Date.now() - started).toBeGreaterThan(200);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('aborts the lease, and says so, when the lock cannot be extended', async () => {
    const reason = await sut.withLock('download:nar:lost', 600, async ({ signal }) => {
      await redis.del(`${keyPrefix}download:nar:lost`);
      if (!signal.aborted) await new Promise((resolve) => signal.addEventListener('abort', resolve));
      return signal.reason as unknown;
    });
    expect(reason).toMatchObject({ name: 'LockUnavailableError', reason: 'lost' });
    expect(await registry.metrics()).toContain('ncps_lock_failures_total{type="download",reason="lost",mode="distributed"} 1');
  });

  it('exports the lock metrics on the registry it was given', async () => {
    const locked = await createLockPort(lockTestConfig('redis', { keyPrefix }), new Registry());
    await locked.withLock('download:nar:m', 5000, () => sut.tryWithLock('download:nar:m', 5000, async () => undefined));
    await locked.close();
    const text = await registry.metrics();
    expect(text).toContain('ncps_lock_acquisitions_total{type="download",result="failure",mode="distributed"} 1');
    expect(text).toContain('ncps_lock_acquisitions_total{type="lru",result="success",mode="distributed"} 0');
  });
});

describe('redis provider with several servers (Redlock quorum)', () => {
  let servers: PrivateRedis[];
  let sut: LockPort;

  beforeAll(async () => {
    Logger.overrideLogger(false);
    servers = await Promise.all([0, 1, 2].map(() => PrivateRedis.start()));
    const retry = { maxAttempts: 1, initialDelayMs: 10, maxDelayMs: 50, jitter: false };
    sut = await createLockPort(
      lockTestConfig('redis', { keyPrefix: 'ncps:lock:', redisAddrs: servers.map((server) => server.address), retry }),
      new Registry(),
      { breaker: { failureThreshold: 100 } },
    );
  });
  afterAll(async () => {
    await sut.close();
    await Promise.all(servers.map((server) => server.destroy()));
  });

  it('writes the lock on every server, keeps working with one down, and fails without a majority', async () => {
    await sut.withLock('lru', 5000, async () => {
      const held = await Promise.all(
        servers.map(async (server) => {
          const client = new Redis(server.port, '127.0.0.1');
          const exists = await client.exists('ncps:lock:lru');
          await client.quit();
          return exists;
        }),
      );
      expect(held).toEqual([1, 1, 1]);
    });

    await servers[0].stop();
    await expect(sut.withLock('lru', 5000, async () => 'with 2 of 3')).resolves.toBe('with 2 of 3');

    await servers[1].stop();
    await expect(sut.withLock('lru', 5000, async () => undefined)).rejects.toMatchObject({ reason: 'backend_error' });
    await expect(sut.check()).rejects.toThrow('Redis unreachable (1 of 3 servers answer)');
  });
});

describe('redis provider with ACL credentials and a database number', () => {
  let server: PrivateRedis;

  beforeAll(async () => {
    Logger.overrideLogger(false);
    server = await PrivateRedis.start({ config: ['user default off', 'user ncps on >s3cret-pass ~* &* +@all'] });
  });
  afterAll(() => server.destroy());

  it('authenticates with username and password and locks in the configured database', async () => {
    const config = lockTestConfig('redis', { keyPrefix: 'ncps:lock:', redisAddrs: [server.address], redis: { username: 'ncps', password: 's3cret-pass', db: 5 } });
    const sut = await createLockPort(config, new Registry());
    try {
      await sut.withLock('lru', 5000, async () => {
        const admin = new Redis({ port: server.port, host: '127.0.0.1', username: 'ncps', password: 's3cret-pass', db: 5 });
        expect(await admin.exists('ncps:lock:lru')).toBe(1);
        await admin.quit();
      });
    } finally {
      await sut.close();
    }
  });

  it('reports a wrong password without ever showing it', async () => {
    const config = lockTestConfig('redis', { keyPrefix: 'ncps:lock:', redisAddrs: [server.address], redis: { username: 'ncps', password: 'wrong-secret-value' } });
    const sut = await createLockPort(config, new Registry(), { readyTimeoutMs: 500 });
    try {
      await sleep(200);
      const error = await sut.check().catch((e: unknown) => e as Error);
      expect(error).toBeInstanceOf(Error);
      expect(error?.message).toMatch(/WRONGPASS|unreachable/);
      expect(error?.message).not.toContain('wrong-secret-value');
      const failure = await sut.withLock('lru', 2000, async () => undefined).catch((e: unknown) => e as Error);
      expect(failure?.message).not.toContain('wrong-secret-value');
      expect(sut.status().detail ?? '').not.toContain('wrong-secret-value');
    } finally {
      await sut.close();
    }
  });
});
