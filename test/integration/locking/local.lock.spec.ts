import { Registry } from 'prom-client';
import { LockPort } from 'src/locking';
import { createLockPort } from 'src/locking/lock.factory';
import { lockTestConfig, testKeyPrefix } from 'test/support/lock-services';
import { describeLockConformance, LockFixture } from './lock.conformance';

/**
 * Local locks live in one process, so every "instance" is the same provider; a local holder can only
 * vanish by failing, and its lock is freed by its `finally` at once.
 */
describeLockConformance('local', (): LockFixture => {
  let port: Promise<LockPort> | undefined;
  const shared = (): Promise<LockPort> =>
    (port ??= createLockPort(lockTestConfig('local', { keyPrefix: testKeyPrefix() }), new Registry()));
  return {
    instances: async (count) => Array(count).fill(await shared()),
    holdAndVanish: async (key) => {
      const lock = await shared();
      let fail!: (error: Error) => void;
      let entered!: () => void;
      const inside = new Promise<void>((resolve) => (entered = resolve));
      void lock
        .withLock(key, 60_000, () => {
          entered();
          return new Promise((_, reject) => (fail = reject));
        })
        .catch(() => undefined);
      await inside;
      // Freed at once, in-process: the upper bound is only a margin for a loaded machine.
      return { vanish: async () => fail(new Error('holder crashed')), freedWithinMs: [0, 1000] };
    },
    closeAll: async () => (await port)?.close(),
  };
});
