import { DataSource } from 'typeorm';
import { dialectOf } from './dialect';

/** A statement of a hot path, with positional parameters written for the data source's dialect. */
export interface PreparedStatement {
  /** Unique among the statements of a process: PostgreSQL keeps a prepared plan per connection under it. */
  name: string;
  sql: string;
}

/** Rows as arrays of their column values, in the order the statement selects them. */
export type Run = (params: readonly unknown[]) => Promise<unknown[][]>;

interface BetterSqlite3Statement {
  readonly database: BetterSqlite3Database;
  raw(toggle: boolean): BetterSqlite3Statement;
  all(...params: unknown[]): unknown[][];
  run(...params: unknown[]): unknown;
}

interface BetterSqlite3Database {
  readonly inTransaction: boolean;
  prepare(sql: string): BetterSqlite3Statement;
}

interface PgPool {
  query(config: { name: string; text: string; values: readonly unknown[]; rowMode: 'array' }): Promise<{ rows: unknown[][] }>;
}

interface Mysql2Pool {
  execute(
    options: { sql: string; values: readonly unknown[]; rowsAsArray: true },
    callback: (error: Error | null, rows: unknown) => void,
  ): void;
}

/**
 * Runs `statement` as a statement the server parses once and then only executes: better-sqlite3's
 * own prepared statement (on TypeORM's one connection, see sqliteQuery), a named statement on the pg
 * pool, mysql2's cached prepared statement on its pool. TypeORM's query runners would build, log and
 * transform around every call, which costs more than an indexed lookup; this is for the lookups a
 * cache hit makes, outside transactions (inside one, use SqlRunner.query). Rows come as arrays (no
 * object built per row), their values as each driver returns them (BIGINT as a string from pg and
 * mysql2, booleans as 0/1 from SQLite and MySQL): the caller normalizes them.
 */
export function preparedQuery(dataSource: DataSource, statement: PreparedStatement): Run {
  const dialect = dialectOf(dataSource);
  switch (dialect) {
    case 'sqlite':
      return sqliteQuery(dataSource, statement.sql);
    case 'postgres': {
      const pool = () => (dataSource.driver as unknown as { master: PgPool }).master;
      return async (params) => (await pool().query({ name: statement.name, text: statement.sql, values: params, rowMode: 'array' })).rows;
    }
    case 'mysql': {
      const pool = () => (dataSource.driver as unknown as { pool: Mysql2Pool }).pool;
      return (params) =>
        new Promise((resolve, reject) =>
          pool().execute({ sql: statement.sql, values: params, rowsAsArray: true }, (error, rows) =>
            error ? reject(error) : resolve(rows as unknown[][]),
          ),
        );
    }
    default: {
      const never: never = dialect;
      throw new Error(`unknown database dialect ${String(never)}`);
    }
  }
}

interface Lookup {
  params: readonly unknown[];
  resolve: (rows: unknown[][]) => void;
  reject: (error: unknown) => void;
}

/**
 * better-sqlite3 runs a statement synchronously, each in a transaction of its own; in WAL mode
 * beginning and ending one takes and releases a read lock (two fcntl calls), which costs as much as
 * the lookup itself. So the lookups asked for during one turn of the event loop (the requests of the
 * connections that had data) run together, in one read transaction, when the turn ends: a busy
 * server pays the lock once per turn, an idle one waits for nothing. Inside a transaction of
 * TypeORM's (one awaits I/O on the shared connection) they run as they would have before: in it.
 */
function sqliteQuery(dataSource: DataSource, sql: string): Run {
  // Prepared on first use (the connection exists once the source is initialized), and again if the
  // source was closed and opened: a statement belongs to the connection it was prepared on.
  let prepared: Record<'lookup' | 'begin' | 'commit' | 'rollback', BetterSqlite3Statement> | undefined;
  let queued: Lookup[] = [];

  const runQueued = (): void => {
    const lookups = queued;
    queued = [];
    let connection: BetterSqlite3Database;
    try {
      connection = (dataSource.driver as unknown as { databaseConnection: BetterSqlite3Database }).databaseConnection;
      if (prepared?.lookup.database !== connection) {
        const [lookup, begin, commit, rollback] = [sql, 'BEGIN', 'COMMIT', 'ROLLBACK'].map((text) => connection.prepare(text));
        prepared = { lookup: lookup.raw(true), begin, commit, rollback };
      }
    } catch (e) {
      for (const { reject } of lookups) reject(e);
      return;
    }
    const { lookup, begin, commit, rollback } = prepared;
    // Should BEGIN fail, each lookup runs in a transaction of its own, as it would alone.
    const together = lookups.length > 1 && !connection.inTransaction && succeeds(begin);
    for (const { params, resolve, reject } of lookups) {
      try {
        resolve(lookup.all(...params));
      } catch (e) {
        reject(e);
      }
    }
    // Reads only: COMMIT just releases the read lock. Never leave the transaction open, whatever
    // happens: the next write on the connection would run inside it.
    if (together && !succeeds(commit)) succeeds(rollback);
  };

  return (params) =>
    new Promise((resolve, reject) => {
      if (queued.push({ params, resolve, reject }) === 1) setImmediate(runQueued);
    });
}

function succeeds(statement: BetterSqlite3Statement): boolean {
  try {
    statement.run();
    return true;
  } catch {
    return false;
  }
}
