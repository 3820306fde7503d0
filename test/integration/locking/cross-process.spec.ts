import { Logger } from '@nestjs/common';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { LockPort } from 'src/locking';
import { createLockPort } from 'src/locking/lock.factory';
import { PrivateRedis } from 'test/support/lock-redis-server';
import { createTestDatabase, TestDatabase } from 'test/support/databases';
import { deleteRedisKeys, lockTestConfig, sleep, testKeyPrefix } from 'test/support/lock-services';
import { LockWorkerProcess } from 'test/support/lock-worker-process';
import { LockWorkerTask } from './fixtures/lock-worker.task';

let database: TestDatabase;
const workers: LockWorkerProcess[] = [];
const start = (task: LockWorkerTask, env?: Record<string, string>): LockWorkerProcess => {
  const worker = LockWorkerProcess.start(task, env);
  workers.push(worker);
  return worker;
};

beforeAll(async () => {
  Logger.overrideLogger(false);
  database = await createTestDatabase('postgres');
});
afterEach(async () => {
  await Promise.all(workers.splice(0).map((worker) => worker.kill()));
});
afterAll(() => database.drop());

describe.each(['redis', 'postgres'] as const)('%s locks across OS processes', (backend) => {
  let keyPrefix: string;
  let port: LockPort;

  beforeEach(async () => {
    keyPrefix = testKeyPrefix();
    port = await createLockPort(lockTestConfig(backend, { keyPrefix, databaseUrl: database.url }), new Registry());
  });
  afterEach(async () => {
    await port.close();
    await deleteRedisKeys(keyPrefix);
  });

  it('never lets two processes into the same critical section', async () => {
    const task: LockWorkerTask = {
      mode: 'contend',
      backend,
      keyPrefix,
      databaseUrl: database.url,
      keys: ['download:nar:x', 'download:nar:y'],
      iterations: 30,
      ttlMs: 30_000,
      counterPrefix: `${keyPrefix}counter:`,
    };
    const results = await Promise.all([1, 2, 3, 4].map(() => start(task).result()));
    expect(results).toEqual(Array(4).fill({ acquired: 30, violations: 0, most: 1 }));
  });

  it('frees the lock of a holder killed with kill -9 (PostgreSQL at once, Redis after the TTL)', async () => {
    const ttlMs = 1500;
    const key = 'download:nar:killed';
    const holder = start({ mode: 'hold', backend, keyPrefix, databaseUrl: database.url, keys: [key], iterations: 1, ttlMs });
    await holder.waitFor('HOLDING');
    // The holder keeps its lock past the TTL while it lives (extension, or its session). The sleep proves
    // that the lock is NOT freed meanwhile: there is no event to wait for instead.
    await sleep(ttlMs + 300);
    await expect(port.tryWithLock(key, ttlMs, async () => undefined)).resolves.toEqual({ acquired: false });

    await holder.kill();
    const killed = Date.now();
    const freedAfter = (await port.withLock(key, 10_000, async () => Date.now())) - killed;
    if (backend === 'postgres') {
      expect(freedAfter).toBeLessThan(1000);
    } else {
      // The last extension happened at most ttl/3 before the kill.
      expect(freedAfter).toBeGreaterThanOrEqual((2 * ttlMs) / 3 - 300);
      expect(freedAfter).toBeLessThan(ttlMs + 1000);
    }
  });
});

describe('redis over TLS, with ACL credentials', () => {
  let certs: string;
  let server: PrivateRedis;

  beforeAll(async () => {
    certs = mkdtempSync(join(tmpdir(), 'ncps-tls-'));
    // A self-signed certificate for 127.0.0.1; the worker trusts it through NODE_EXTRA_CA_CERTS.
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        join(certs, 'key.pem'),
        '-out',
        join(certs, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    server = await PrivateRedis.start({
      tls: { certFile: join(certs, 'cert.pem'), keyFile: join(certs, 'key.pem') },
      config: ['user default off', 'user ncps on >tls-s3cret ~* &* +@all'],
    });
  });
  afterAll(async () => {
    await server.destroy();
    rmSync(certs, { recursive: true, force: true });
  });

  it('locks through TLS when --cache-redis-use-tls is set', async () => {
    const task: LockWorkerTask = {
      mode: 'contend',
      backend: 'redis',
      keyPrefix: 'ncps:lock:',
      redisAddrs: [server.address],
      redis: { useTls: true, username: 'ncps', password: 'tls-s3cret' },
      keys: ['lru'],
      iterations: 3,
      ttlMs: 5000,
    };
    await expect(start(task, { NODE_EXTRA_CA_CERTS: join(certs, 'cert.pem') }).result()).resolves.toEqual({
      acquired: 3,
      violations: 0,
      most: 0,
    });
  });

  it('cannot reach the TLS server without the flag', async () => {
    const plain = await createLockPort(
      lockTestConfig('redis', {
        keyPrefix: 'ncps:lock:',
        redisAddrs: [server.address],
        redis: { username: 'ncps', password: 'tls-s3cret' },
      }),
      new Registry(),
      // The server never answers a plain client: keep its unanswered commands' timers short.
      { readyTimeoutMs: 300, redis: { commandTimeoutMs: 300 } },
    );
    try {
      await expect(plain.check()).rejects.toThrow(/Redis (unreachable|is not connected)/);
    } finally {
      await plain.close();
    }
  });
});

describe('the shared counter', () => {
  it('is what catches overlap: two unlocked processes do overlap', async () => {
    // Guards the test above against passing vacuously: without a lock, the same workload overlaps.
    const redis = new Redis(6379, '127.0.0.1');
    const prefix = testKeyPrefix();
    let most = 0;
    await Promise.all(
      [1, 2, 3, 4].map(async () => {
        for (let i = 0; i < 30; i++) {
          most = Math.max(most, await redis.incr(`${prefix}c`));
          await sleep(Math.random() * 3);
          await redis.decr(`${prefix}c`);
        }
      }),
    );
    await redis.quit();
    await deleteRedisKeys(prefix);
    expect(most).toBeGreaterThan(1);
  });
});
