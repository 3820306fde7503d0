import { DataSource } from 'typeorm';
import { DatabaseConfig } from 'src/config/config';
import { createDataSource } from './data-source';
import { withMysqlMigrationLock, withPostgresMigrationLock, withSqliteMigrationLock } from './migration-lock';
import { dialectOf } from './sql/dialect';

export interface MigrationPlan {
  pending: string[];
}

/** Lists migrations that have not been applied yet. */
export async function pendingMigrations(ds: DataSource): Promise<MigrationPlan> {
  const applied = new Set<string>();
  const runner = ds.createQueryRunner();
  try {
    if (await runner.hasTable('migrations')) {
      const rows = (await runner.query('SELECT name FROM migrations')) as Array<{ name: string }>;
      rows.forEach((r) => applied.add(r.name));
    }
  } finally {
    await runner.release();
  }
  return { pending: ds.migrations.map((m) => m.name ?? m.constructor.name).filter((n) => !applied.has(n)) };
}

/**
 * Applies pending migrations under a database-wide lock, so that instances starting together
 * migrate exactly once: the first applies them, the others wait and then find nothing to do.
 * Returns the names this call applied.
 */
export async function applyMigrations(ds: DataSource): Promise<string[]> {
  const run = async (transaction: 'each' | 'none') => (await ds.runMigrations({ transaction })).map((m) => m.name);
  const dialect = dialectOf(ds);
  switch (dialect) {
    case 'postgres':
      return withPostgresMigrationLock(ds, () => run('each'));
    case 'mysql':
      return withMysqlMigrationLock(ds, () => run('each'));
    case 'sqlite':
      // The lock is itself a transaction that wraps all the migrations.
      return withSqliteMigrationLock(ds, () => run('none'));
    default: {
      const never: never = dialect;
      throw new Error(`unknown database dialect ${String(never)}`);
    }
  }
}

export type MigrateUpResult = { pending: string[] } | { applied: string[] };

/** `ncps migrate up [--dry-run]`: lists (dry run) or applies the pending migrations of a database. */
export async function migrateUp(config: DatabaseConfig, opts: { dryRun: boolean }): Promise<MigrateUpResult> {
  const ds = createDataSource(config);
  await ds.initialize();
  try {
    return opts.dryRun ? await pendingMigrations(ds) : { applied: await applyMigrations(ds) };
  } finally {
    await ds.destroy();
  }
}
