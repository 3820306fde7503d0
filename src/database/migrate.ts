import { DataSource } from 'typeorm';

export interface MigrationPlan {
  pending: string[];
}

/** Lists migrations that have not been applied yet. */
export async function pendingMigrations(ds: DataSource): Promise<MigrationPlan> {
  const applied = new Set<string>();
  const runner = ds.createQueryRunner();
  try {
    if (await runner.hasTable('migrations')) {
      const rows: Array<{ name: string }> = await runner.query('SELECT name FROM migrations');
      rows.forEach((r) => applied.add(r.name));
    }
  } finally {
    await runner.release();
  }
  return { pending: ds.migrations.map((m) => m.name ?? m.constructor.name).filter((n) => !applied.has(n)) };
}

/** Applies pending migrations, each in its own transaction. */
export async function applyMigrations(ds: DataSource): Promise<string[]> {
  try {
    const done = await ds.runMigrations({ transaction: 'each' });
    return done.map((m) => m.name);
  } catch (e) {
    // Another process may have applied the same migration between our check and our write: that
    // is success if nothing is pending any more.
    if ((await pendingMigrations(ds)).pending.length === 0) return [];
    throw e;
  }
}
