import { Test } from '@nestjs/testing';
import { DataSource } from 'typeorm';
import { NcpsConfig } from 'src/config/config';
import { ConfigModule } from 'src/config/config.module';
import { ConfigRepository, DatabaseHealthIndicator, DatabaseModule, NarFileRepository, NarInfoRepository } from 'src/database';
import { TEST_DIALECTS, createTestDatabase } from 'test/support/databases';
import { narinfo } from './fixtures';

describe.each(TEST_DIALECTS)('DatabaseModule on %s', (dialect) => {
  it('migrates at start, injects working repositories, reports health, and disconnects at shutdown', async () => {
    const db = await createTestDatabase(dialect);
    try {
      const moduleRef = await Test.createTestingModule({
        imports: [ConfigModule.forRoot({ database: db.config } as NcpsConfig), DatabaseModule],
      }).compile();
      await moduleRef.init();
      const dataSource = moduleRef.get(DataSource);
      try {
        const row = narinfo();
        await moduleRef.get(NarInfoRepository).insertIfAbsent(row);

        await expect(moduleRef.get(NarInfoRepository).findByHash(row.hash)).resolves.toMatchObject({ hash: row.hash });
        await expect(moduleRef.get(NarFileRepository).sumStoredBytes()).resolves.toBe(0);
        await expect(moduleRef.get(ConfigRepository).getOrInsert('k', 'v')).resolves.toBe('v');
        await expect(moduleRef.get(DatabaseHealthIndicator).check()).resolves.toEqual({
          database: { status: 'up', dialect: expect.any(String) },
        });
      } finally {
        await moduleRef.close();
      }
      expect(dataSource.isInitialized).toBe(false);
    } finally {
      await db.drop();
    }
  });
});
