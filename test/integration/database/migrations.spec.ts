import { DataSource } from 'typeorm';
import { DatabaseDialect } from 'src/config/config';
import { applyMigrations, migrateUp, pendingMigrations } from 'src/database';
import { TEST_DIALECTS, TestDatabase, createTestDatabase, openDataSource } from 'test/support/databases';
import { MYSQL_MIGRATIONS } from '../../../migrations/mysql';
import { POSTGRES_MIGRATIONS } from '../../../migrations/postgres';
import { SQLITE_MIGRATIONS } from '../../../migrations/sqlite';

const MIGRATIONS = { sqlite: SQLITE_MIGRATIONS, postgres: POSTGRES_MIGRATIONS, mysql: MYSQL_MIGRATIONS };
const migrationNames = (dialect: DatabaseDialect) => MIGRATIONS[dialect].map((M) => new M().name);

describe.each(TEST_DIALECTS)('migrations on %s', (dialect) => {
  let db: TestDatabase;

  beforeEach(async () => {
    db = await createTestDatabase(dialect);
  });

  afterEach(async () => {
    await db.drop();
  });

  it('migrate up --dry-run lists the pending migrations and changes nothing; migrate up applies them once', async () => {
    const all = migrationNames(dialect);
    expect(all.length).toBeGreaterThan(0);

    await expect(migrateUp(db.config, { dryRun: true })).resolves.toEqual({ pending: all });
    await expect(migrateUp(db.config, { dryRun: true })).resolves.toEqual({ pending: all });
    await expect(migrateUp(db.config, { dryRun: false })).resolves.toEqual({ applied: all });
    await expect(migrateUp(db.config, { dryRun: false })).resolves.toEqual({ applied: [] });
    await expect(migrateUp(db.config, { dryRun: true })).resolves.toEqual({ pending: [] });
  });

  it('five instances migrating a fresh database at once apply each migration exactly once, without error', async () => {
    const sources: DataSource[] = await Promise.all(Array.from({ length: 5 }, () => openDataSource(db.config, { migrate: false })));
    try {
      const results = await Promise.allSettled(sources.map((ds) => applyMigrations(ds)));

      expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
      const applied = results.flatMap((r) => (r.status === 'fulfilled' ? r.value : []));
      const names = migrationNames(dialect);
      expect(applied.sort()).toEqual([...names].sort());
      const recorded: Array<{ name: string }> = await sources[0].query('SELECT name FROM migrations');
      expect(recorded.map((r) => r.name).sort()).toEqual([...names].sort());
      await expect(pendingMigrations(sources[1])).resolves.toEqual({ pending: [] });
    } finally {
      await Promise.all(sources.map((ds) => ds.destroy()));
    }
  });
});
