import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { DatabaseConfig, DatabaseDialect } from 'src/config/config';
import { applyMigrations, createDataSource } from 'src/database';

/**
 * Throwaway databases for tests: each call makes a fresh one with a random name, so suites can run in
 * parallel and leave nothing behind once `drop()` has run.
 *
 *   const db = await createTestDatabase('postgres');
 *   const ds = await openDataSource(db.config);   // connected and migrated
 *   ...
 *   await ds.destroy();
 *   await db.drop();
 *
 * PostgreSQL and MariaDB are the services every test machine runs (design.md): 127.0.0.1:5432 as user
 * postgres (trust) and 127.0.0.1:3306 as root (no password). A server that is not there fails the
 * test; it is never a reason to skip one.
 */
export const TEST_DIALECTS: readonly DatabaseDialect[] = ['sqlite', 'postgres', 'mysql'];

/** Server-level URLs of the test services, pointing at a database that always exists. */
const ADMIN_URLS = {
  postgres: 'postgres://postgres@127.0.0.1:5432/postgres',
  mysql: 'mysql://root@127.0.0.1:3306/mysql',
} as const;

export interface TestDatabase {
  dialect: DatabaseDialect;
  /** Its name on the server (`ncps_test_...`); SQLite: the file's path. */
  name: string;
  /** Connection URL of the fresh database (no password: the test services need none). */
  url: string;
  /** Ready for createDataSource / the Nest config, with the pool sizes asked for. */
  config: DatabaseConfig;
  /** Removes the database (SQLite: its directory), closing connections other code left open. */
  drop(): Promise<void>;
}

export interface TestDatabaseOptions {
  /** Pool size of `config` (4 by default: tests open several data sources per database). */
  poolMaxOpen?: number;
  poolMaxIdle?: number;
  /** PostgreSQL: a role (made by the test) to own the database instead of postgres. */
  owner?: string;
}

/** A fresh, empty database (no schema yet: open it with openDataSource, or migrate it yourself). */
export async function createTestDatabase(dialect: DatabaseDialect, opts: TestDatabaseOptions = {}): Promise<TestDatabase> {
  const pool = { poolMaxOpen: opts.poolMaxOpen ?? 4, poolMaxIdle: opts.poolMaxIdle ?? 1 };
  const make = (name: string, url: string, drop: () => Promise<void>): TestDatabase => ({
    dialect,
    name,
    url,
    config: { url, dialect, ...pool },
    drop,
  });
  const name = `ncps_test_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  if (opts.owner !== undefined && dialect !== 'postgres') throw new Error('an owner role is a PostgreSQL option');
  switch (dialect) {
    case 'sqlite': {
      const dir = await mkdtemp(join(tmpdir(), 'ncps-db-'));
      const file = join(dir, 'ncps.sqlite');
      return make(file, `sqlite:${file}`, () => rm(dir, { recursive: true, force: true }));
    }
    case 'postgres':
      await adminQuery('postgres', `CREATE DATABASE "${name}"${opts.owner === undefined ? '' : ` OWNER "${opts.owner}"`}`);
      // FORCE ends sessions a failed test left open, which would otherwise block the drop.
      return make(name, `postgres://postgres@127.0.0.1:5432/${name}`, () =>
        adminQuery('postgres', `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`),
      );
    case 'mysql':
      await adminQuery('mysql', `CREATE DATABASE \`${name}\``);
      return make(name, `mysql://root@127.0.0.1:3306/${name}`, () => adminQuery('mysql', `DROP DATABASE IF EXISTS \`${name}\``));
    default: {
      const never: never = dialect;
      throw new Error(`unknown dialect ${String(never)}`);
    }
  }
}

/** A connected data source on `config`, with the schema migrated unless `migrate` is false. */
export async function openDataSource(config: DatabaseConfig, { migrate = true } = {}): Promise<DataSource> {
  const ds = createDataSource(config);
  await ds.initialize();
  if (migrate) await applyMigrations(ds);
  return ds;
}

async function adminQuery(dialect: 'postgres' | 'mysql', sql: string): Promise<void> {
  const ds = createDataSource({ url: ADMIN_URLS[dialect], dialect, poolMaxOpen: 1, poolMaxIdle: 0 });
  try {
    await ds.initialize();
  } catch (e) {
    throw new Error(`the ${dialect} test server (${ADMIN_URLS[dialect]}) is not reachable: ${(e as Error).message}`);
  }
  try {
    await ds.query(sql);
  } finally {
    await ds.destroy();
  }
}
