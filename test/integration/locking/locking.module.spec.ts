import { Logger } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { ConfigModule } from 'src/config/config.module';
import { NcpsConfig } from 'src/config/config';
import { LockHealthIndicator, LockingModule, LockPort } from 'src/locking';
import { MetricsModule } from 'src/metrics/metrics.module';
import { Registry } from 'prom-client';
import { createTestDatabase, TestDatabase } from 'test/support/databases';
import { deleteRedisKeys, lockTestConfig, testKeyPrefix } from 'test/support/lock-services';
import { LockBackend } from 'src/config/config';

describe('LockingModule', () => {
  let database: TestDatabase;

  beforeAll(async () => {
    Logger.overrideLogger(false);
    database = await createTestDatabase('postgres');
  });
  afterAll(() => database.drop());

  it.each(['local', 'redis', 'postgres'] as LockBackend[])(
    'provides the %s backend from --cache-lock-backend, healthy, and closes it on shutdown',
    async (backend) => {
      const keyPrefix = testKeyPrefix();
      const config = lockTestConfig(backend, { keyPrefix, databaseUrl: backend === 'postgres' ? database.url : undefined }) as NcpsConfig;
      const app = await Test.createTestingModule({ imports: [ConfigModule.forRoot(config), MetricsModule, LockingModule] }).compile();
      await app.init();

      const lock = app.get(LockPort);
      expect(lock.status().backend).toBe(backend);
      await expect(lock.withLock('lru', 5000, async () => 'locked')).resolves.toBe('locked');
      await expect(app.get(LockHealthIndicator).isHealthy()).resolves.toMatchObject({
        locks: { status: 'up', backend, mode: backend === 'local' ? 'local' : 'distributed', reachable: true },
      });
      expect(await app.get(Registry).metrics()).toContain('ncps_lock_acquisitions_total{type="lru",result="success"');

      const close = jest.spyOn(lock, 'close');
      await app.close();
      expect(close).toHaveBeenCalled();
      await deleteRedisKeys(keyPrefix);
    },
  );
});
