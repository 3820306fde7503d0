import { Registry } from 'prom-client';
import { LockPort } from 'src/locking';
import { RetryPolicy } from 'src/locking/lock.backoff';
import { createLockPort } from 'src/locking/lock.factory';
import { deleteRedisKeys, lockTestConfig, testKeyPrefix } from 'test/support/lock-services';
import { LockFixture } from './lock.conformance';

/**
 * The lock conformance fixture for the redis backend: on the machine's Redis by default, or on
 * `redisAddrs` (a cluster's nodes) when given. Keys get a fresh prefix, deleted afterwards on the
 * machine's Redis (a test cluster is thrown away whole).
 */
export function redisLockFixture(redisAddrs?: string[]): LockFixture {
  const keyPrefix = testKeyPrefix();
  const opened: LockPort[] = [];
  const open = async (retry?: RetryPolicy): Promise<LockPort> => {
    const port = await createLockPort(lockTestConfig('redis', { keyPrefix, retry, redisAddrs }), new Registry());
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
      if (!redisAddrs) await deleteRedisKeys(keyPrefix);
    },
  };
}
