import { Logger } from '@nestjs/common';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { LockPort } from 'src/locking';
import { createLockPort } from 'src/locking/lock.factory';
import { PrivateRedis } from 'test/support/lock-redis-server';
import { deleteRedisKeys, lockTestConfig, sleep, testKeyPrefix } from 'test/support/lock-services';
import { describeLockConformance } from './lock.conformance';
import { redisLockFixture } from './redis.fixture';

describeLockConformance('redis', () => redisLockFixture());

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

  it('keeps the documented key layout: <prefix>download:nar:<hash> with a TTL, gone after release', async () => {
    await sut.withLock('download:nar:abc', 5000, async () => {
      expect(await redis.exists(`${keyPrefix}download:nar:abc`)).toBe(1);
      const ttl = await redis.pttl(`${keyPrefix}download:nar:abc`);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(5000);
    });
    expect(await redis.exists(`${keyPrefix}download:nar:abc`)).toBe(0);
    expect(sut.status()).toEqual({ backend: 'redis', mode: 'distributed', reachable: true, breaker: 'closed' });
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
    // Alive, the holder renews its lease past several lease lengths. This sleep proves that the lock is
    // NOT lost meanwhile: there is no event to wait for instead.
    await sleep(3 * leaseMaxMs);
    await expect(sut.tryWithLock(key, ttlMs, async () => undefined)).resolves.toEqual({ acquired: false });

    await leasing.close(); // gone without releasing: the lease runs out, long before the 60 s TTL
    const vanished = Date.now();
    const freedAfter = (await sut.withLock(key, ttlMs, async () => Date.now())) - vanished;
    expect(freedAfter).toBeGreaterThanOrEqual(leaseMaxMs / 2);
    expect(freedAfter).toBeLessThan(leaseMaxMs + 1000);
  });

  it("renews a reader's lease too: a NAR served for longer than a lease keeps the LRU out", async () => {
    const leaseMaxMs = 600;
    const reading = await createLockPort(lockTestConfig('redis', { keyPrefix }), new Registry(), { redis: { leaseMaxMs } });
    const key = 'cache:nar:long-read';
    let writerGotIn = 0;
    await reading.withReadLock(key, 60_000, async () => {
      // Proves that the writer does NOT get in while the read outlives several leases: no event exists
      // for that, so it keeps trying for four lease lengths.
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

describe('redis provider with several independent servers (--cache-redis-redlock-quorum)', () => {
  let servers: PrivateRedis[];
  let sut: LockPort;

  beforeAll(async () => {
    Logger.overrideLogger(false);
    servers = await Promise.all([0, 1, 2].map(() => PrivateRedis.start()));
    const retry = { maxAttempts: 1, initialDelayMs: 10, maxDelayMs: 50, jitter: false };
    sut = await createLockPort(
      lockTestConfig('redis', {
        keyPrefix: 'ncps:lock:',
        redisAddrs: servers.map((server) => server.address),
        retry,
        redis: { redlockQuorum: true },
      }),
      new Registry(),
      { breaker: { failureThreshold: 100 } },
    );
  });
  afterAll(async () => {
    await sut?.close();
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
    const config = lockTestConfig('redis', {
      keyPrefix: 'ncps:lock:',
      redisAddrs: [server.address],
      redis: { username: 'ncps', password: 's3cret-pass', db: 5 },
    });
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

  it('refuses to start with a wrong password, saying so without ever showing it', async () => {
    const config = lockTestConfig('redis', {
      keyPrefix: 'ncps:lock:',
      redisAddrs: [server.address],
      redis: { username: 'ncps', password: 'wrong-secret-value' },
    });
    const logged: unknown[] = [];
    jest.spyOn(Logger.prototype, 'error').mockImplementation((...args: unknown[]) => void logged.push(args));
    try {
      const started = await createLockPort(config, new Registry(), { readyTimeoutMs: 3000 }).catch((e: unknown) => e as Error);
      if (started instanceof LockPort) await started.close();
      const error = started as Error;
      expect(error).toBeInstanceOf(Error);
      expect(error.message).toMatch(/^Redis at 127\.0\.0\.1:\d+ refused the credentials of user "ncps" \(WRONGPASS/);
      expect(error.message).not.toContain('wrong-secret-value');
      expect(JSON.stringify(logged)).not.toContain('wrong-secret-value');
      expect(logged.length).toBeGreaterThan(0);
    } finally {
      jest.restoreAllMocks();
    }
  });
});

describe('redis provider started while its single server is down', () => {
  it('fails lock calls until the server answers, then finds out what it is and locks there', async () => {
    const server = await PrivateRedis.start();
    await server.stop();
    const retry = { maxAttempts: 0, initialDelayMs: 10, maxDelayMs: 50, jitter: false };
    const sut = await createLockPort(
      lockTestConfig('redis', { keyPrefix: 'ncps:lock:', redisAddrs: [server.address], retry }),
      new Registry(),
      { readyTimeoutMs: 300, breaker: { failureThreshold: 100 } },
    );
    try {
      await expect(sut.withLock('lru', 1000, async () => undefined)).rejects.toMatchObject({ reason: 'backend_error' });
      await expect(sut.check()).rejects.toThrow(/Redis unreachable/);
      await server.start();
      const client = new Redis(server.port, '127.0.0.1');
      try {
        const deadline = Date.now() + 10_000;
        let seen: number | undefined;
        while (seen === undefined && Date.now() < deadline) {
          await sleep(100);
          seen = await sut.withLock('lru', 1000, () => client.exists('ncps:lock:lru')).catch(() => undefined);
        }
        expect(seen).toBe(1); // the plain layout: a standalone server
      } finally {
        await client.quit();
      }
      await expect(sut.check()).resolves.toBeUndefined();
    } finally {
      await sut.close();
      await server.destroy();
    }
  });
});

describe('redis provider with an ACL user that may not run INFO', () => {
  it('takes the single server for a plain one and locks there', async () => {
    const server = await PrivateRedis.start({ config: ['user default off', 'user locks on >p4ss ~* &* +@all -info'] });
    const config = lockTestConfig('redis', {
      keyPrefix: 'ncps:lock:',
      redisAddrs: [server.address],
      redis: { username: 'locks', password: 'p4ss' },
    });
    const sut = await createLockPort(config, new Registry());
    try {
      await expect(sut.withLock('lru', 5000, async () => 'locked')).resolves.toBe('locked');
      await expect(sut.check()).resolves.toBeUndefined();
    } finally {
      await sut.close();
      await server.destroy();
    }
  });
});
