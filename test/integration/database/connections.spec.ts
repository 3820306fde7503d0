import { DataSource } from 'typeorm';
import { DatabaseConfig, DatabaseDialect } from 'src/config/config';
import { createDataSource } from 'src/database';
import { TestDatabase, createTestDatabase } from 'test/support/databases';

/** Connects with `url`, runs `sql`, disconnects; returns the rows. */
async function queryWith(url: string, dialect: DatabaseDialect, sql: string): Promise<unknown[]> {
  const ds: DataSource = createDataSource({ url, dialect, poolMaxOpen: 2, poolMaxIdle: 1 });
  await ds.initialize();
  try {
    return await ds.query(sql);
  } finally {
    await ds.destroy();
  }
}

async function connectError(config: DatabaseConfig): Promise<Error> {
  const ds = createDataSource(config);
  try {
    await ds.initialize();
  } catch (e) {
    return e as Error;
  }
  await ds.destroy();
  throw new Error('connected, but should not have');
}

describe('database connections from URLs', () => {
  const databases: TestDatabase[] = [];
  const fresh = async (dialect: DatabaseDialect) => {
    const db = await createTestDatabase(dialect);
    databases.push(db);
    return db;
  };
  const nameOf = (db: TestDatabase) => db.url.slice(db.url.lastIndexOf('/') + 1);

  afterAll(async () => {
    await Promise.all(databases.map((db) => db.drop()));
  });

  it('reaches PostgreSQL through its unix socket directory (?host=)', async () => {
    const db = await fresh('postgres');

    const rows = await queryWith(
      `postgresql:///${nameOf(db)}?host=/var/run/postgresql&user=postgres`,
      'postgres',
      'SELECT current_database() AS db',
    );

    expect(rows).toEqual([{ db: nameOf(db) }]);
  });

  it('reaches MariaDB through its unix socket (?socket=)', async () => {
    const db = await fresh('mysql');

    const rows = await queryWith(`mysql://root@localhost/${nameOf(db)}?socket=/run/mysqld/mysqld.sock`, 'mysql', 'SELECT DATABASE() AS db');

    expect(rows).toEqual([{ db: nameOf(db) }]);
  });

  it('names the PostgreSQL session ncps unless the URL says otherwise', async () => {
    const db = await fresh('postgres');

    await expect(queryWith(db.url, 'postgres', 'SHOW application_name')).resolves.toEqual([{ application_name: 'ncps' }]);
    await expect(queryWith(`${db.url}?application_name=ncps-eu`, 'postgres', 'SHOW application_name')).resolves.toEqual([
      { application_name: 'ncps-eu' },
    ]);
  });

  it.each([
    ['postgres', 'postgres://postgres:s3cret-pw@127.0.0.1:5432/postgres?sslmode=require', /does not support SSL/],
    ['mysql', 'mysql://root:s3cret-pw@127.0.0.1:3306/mysql?sslmode=require', /secure connection/],
  ] as const)('%s with sslmode=require refuses a server without TLS', async (dialect, url, message) => {
    const error = await connectError({ url, dialect, poolMaxOpen: 1, poolMaxIdle: 0 });

    expect(error.message).toMatch(message);
    expect(JSON.stringify({ message: error.message, stack: error.stack })).not.toContain('s3cret-pw');
  });

  it.each([
    ['postgres', 'postgres://ncps:s3cret-pw@127.0.0.1:1/ncps'],
    ['mysql', 'mysql://ncps:s3cret-pw@127.0.0.1:1/ncps'],
  ] as const)('%s: a failed connection does not reveal the password', async (dialect, url) => {
    const error = await connectError({ url, dialect, poolMaxOpen: 1, poolMaxIdle: 0 });

    expect(error.message).toMatch(/ECONNREFUSED/);
    expect(JSON.stringify({ message: error.message, stack: error.stack })).not.toContain('s3cret-pw');
  });

  it('opens at most poolMaxOpen PostgreSQL connections however many queries wait', async () => {
    const db = await fresh('postgres');
    const ds = createDataSource({ ...db.config, poolMaxOpen: 3, poolMaxIdle: 1 });
    await ds.initialize();
    try {
      await Promise.all(Array.from({ length: 12 }, () => ds.query('SELECT pg_sleep(0.05)')));
      const [{ n }] = await ds.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database()`);

      expect(n).toBeLessThanOrEqual(3);
    } finally {
      await ds.destroy();
    }
  });

  it('opens at most poolMaxOpen MariaDB connections however many queries wait', async () => {
    const db = await fresh('mysql');
    const ds = createDataSource({ ...db.config, poolMaxOpen: 3, poolMaxIdle: 1 });
    await ds.initialize();
    try {
      await Promise.all(Array.from({ length: 12 }, () => ds.query('SELECT SLEEP(0.05)')));
      const [{ n }] = await ds.query(`SELECT COUNT(*) AS n FROM information_schema.processlist WHERE db = DATABASE()`);

      expect(Number(n)).toBeLessThanOrEqual(3);
    } finally {
      await ds.destroy();
    }
  });
});
