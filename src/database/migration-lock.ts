import { createHash } from 'node:crypto';
import { DataSource } from 'typeorm';
import { isRetryableDatabaseError } from './retry';

/** How long an instance waits for another one's migrations before giving up with an error. */
const LOCK_WAIT_SECONDS = 600;

/** Pause between two attempts at SQLite's write lock. */
const SQLITE_POLL_MS = 50;

/**
 * PostgreSQL advisory lock key, two-int4 form: that key space is separate from the single-bigint
 * form, so no lock the lock backend derives from a hash can collide with it. 0x6e637073 is "ncps".
 */
const PG_LOCK = [0x6e637073, 1] as const;

interface PgClient {
  connect(): Promise<void>;
  query(sql: string, params?: unknown[]): Promise<unknown>;
  end(): Promise<void>;
  on(event: 'error', listener: (e: Error) => void): void;
}

/**
 * Runs `work` while holding PostgreSQL's session advisory lock on a connection of its own: not one
 * borrowed from the pool, which `work` needs (a pool of one would deadlock). The server releases the
 * lock when the session ends, so an instance killed mid-migration does not block the others.
 */
export async function withPostgresMigrationLock<T>(dataSource: DataSource, work: () => Promise<T>): Promise<T> {
  const o = dataSource.options;
  if (o.type !== 'postgres') throw new Error('withPostgresMigrationLock needs a PostgreSQL data source');
  // The pg module TypeORM loaded (pg ships no type declarations of its own).
  const pg = (dataSource.driver as unknown as { postgres: { Client: new (config: object) => PgClient } }).postgres;
  const client = new pg.Client({
    host: o.host,
    port: o.port,
    user: o.username,
    password: o.password,
    database: o.database,
    ssl: o.ssl,
    application_name: 'ncps migrations',
    connectionTimeoutMillis: o.connectTimeoutMS,
  });
  // Losing this connection loses the lock, not the migration (`work` runs on pooled connections); at
  // worst a second instance then collides with it and fails to start. Never crash on the event.
  client.on('error', () => undefined);
  await client.connect();
  try {
    await client.query(`SET lock_timeout = '${LOCK_WAIT_SECONDS}s'`);
    try {
      await client.query('SELECT pg_advisory_lock($1, $2)', [...PG_LOCK]);
    } catch (e) {
      if ((e as { code?: string }).code === '55P03') throw lockTimeout();
      throw e;
    }
    return await work();
  } finally {
    await client.end();
  }
}

/**
 * Runs `work` while holding a MySQL/MariaDB named lock (GET_LOCK) on a connection of its own. Lock
 * names are server-wide, so the name is derived from the database's: two ncps databases on one
 * server migrate independently. Closing the session releases the lock.
 */
export async function withMysqlMigrationLock<T>(dataSource: DataSource, work: () => Promise<T>): Promise<T> {
  const o = dataSource.options;
  if (o.type !== 'mysql') throw new Error('withMysqlMigrationLock needs a MySQL data source');
  // Loaded here, not at the top: a server on another database never needs mysql2.
  const { createConnection } = await import('mysql2/promise');
  const connection = await createConnection({
    host: o.host,
    port: o.port,
    socketPath: o.socketPath,
    user: o.username,
    password: o.password,
    database: o.database,
    ssl: o.ssl as import('mysql2').SslOptions | undefined,
    connectTimeout: o.connectTimeout,
  });
  try {
    // GET_LOCK names are at most 64 characters; a digest of the database name always fits.
    const name = `ncps:migrations:${createHash('sha256').update(String(o.database)).digest('hex').slice(0, 40)}`;
    const [rows] = await connection.query('SELECT GET_LOCK(?, ?) AS got', [name, LOCK_WAIT_SECONDS]);
    if (Number((rows as Array<{ got: unknown }>)[0]?.got) !== 1) throw lockTimeout();
    return await work();
  } finally {
    await connection.end();
  }
}

/**
 * Runs `work` inside a BEGIN IMMEDIATE transaction on the data source's only connection: SQLite's
 * write lock is then the migration lock, and `work` (which must not open transactions of its own)
 * commits or rolls back as a whole. better-sqlite3 waits for a busy database synchronously, which
 * would freeze a process whose other connection holds the lock; so the lock is polled with a zero
 * busy timeout and an asynchronous pause, until LOCK_WAIT_SECONDS have passed.
 */
export async function withSqliteMigrationLock<T>(dataSource: DataSource, work: () => Promise<T>): Promise<T> {
  const o = dataSource.options;
  if (o.type !== 'better-sqlite3') throw new Error('withSqliteMigrationLock needs a SQLite data source');
  const deadline = Date.now() + LOCK_WAIT_SECONDS * 1000;
  await dataSource.query('PRAGMA busy_timeout = 0');
  try {
    for (;;) {
      try {
        await dataSource.query('BEGIN IMMEDIATE');
        break;
      } catch (e) {
        if (!isRetryableDatabaseError(e)) throw e;
        if (Date.now() > deadline) throw lockTimeout();
        await new Promise((resolve) => setTimeout(resolve, SQLITE_POLL_MS));
      }
    }
  } finally {
    await dataSource.query(`PRAGMA busy_timeout = ${Number(o.timeout ?? 5000)}`);
  }
  try {
    const result = await work();
    await dataSource.query('COMMIT');
    return result;
  } catch (e) {
    await dataSource.query('ROLLBACK');
    throw e;
  }
}

function lockTimeout(): Error {
  return new Error(`another instance has held the migration lock for ${LOCK_WAIT_SECONDS} s; is a migration stuck?`);
}
