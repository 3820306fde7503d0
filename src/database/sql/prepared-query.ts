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

/** Rows kept per parameter by a SQLite lookup while the database is unchanged (see sqliteQuery). */
const MEMO_ENTRIES = 20_000;

/**
 * What tells that a SQLite database changed since it was last asked: total_changes() counts the rows
 * this connection inserted, updated or deleted (TypeORM's better-sqlite3 driver has one connection
 * for the whole process), data_version moves when another connection committed (an `ncps` command in
 * another process). Two statements: the pragma read through its table-valued function
 * (`pragma_data_version()`) would parse and prepare the pragma again on every call.
 */
const SQLITE_CHANGES = 'SELECT total_changes()';
const SQLITE_DATA_VERSION = 'PRAGMA data_version';

/**
 * better-sqlite3 runs a statement synchronously, each in a transaction of its own; in WAL mode
 * beginning and ending one takes and releases a read lock (two fcntl calls), which costs as much as
 * the lookup itself. So the lookups asked for during one turn of the event loop (the requests of the
 * connections that had data) run together when the turn ends, two or more in one read transaction:
 * a busy server pays the lock once per turn, an idle one waits for nothing. Inside a transaction of
 * TypeORM's (one awaits I/O on the shared connection) they run as they would have before: in it.
 *
 * Outside one, the rows of a lookup by one text parameter are remembered until the database changes
 * (SQLITE_CHANGES and SQLITE_DATA_VERSION, read once per turn, before the lookups): a hit on a
 * database nobody wrote to since costs no lookup, and a turn of such hits no transaction. Callers
 * get the same arrays again and must not change them. Never inside a transaction, whose writes may
 * yet be rolled back without total_changes() moving back.
 */
function sqliteQuery(dataSource: DataSource, sql: string): Run {
  // Prepared on first use (the connection exists once the source is initialized), and again if the
  // source was closed and opened: a statement belongs to the connection it was prepared on.
  let prepared: Record<'lookup' | 'begin' | 'commit' | 'rollback' | 'changes' | 'dataVersion', BetterSqlite3Statement> | undefined;
  let queued: Lookup[] = [];
  const memo = new Map<string, unknown[][]>();
  let memoVersion = '';

  /** Clears the memo if the database changed since it was filled; false when that cannot be told. */
  const memoHolds = (changes: BetterSqlite3Statement, dataVersion: BetterSqlite3Statement): boolean => {
    let now: string;
    try {
      now = `${String(changes.all()[0][0])};${String(dataVersion.all()[0][0])}`;
    } catch {
      return false;
    }
    if (now !== memoVersion) {
      memo.clear();
      memoVersion = now;
    }
    return true;
  };

  const runQueued = (): void => {
    const lookups = queued;
    queued = [];
    let connection: BetterSqlite3Database;
    try {
      connection = (dataSource.driver as unknown as { databaseConnection: BetterSqlite3Database }).databaseConnection;
      if (prepared?.lookup.database !== connection) {
        const [lookup, begin, commit, rollback, changes, dataVersion] = [
          sql,
          'BEGIN',
          'COMMIT',
          'ROLLBACK',
          SQLITE_CHANGES,
          SQLITE_DATA_VERSION,
        ].map((text) => connection.prepare(text));
        prepared = { lookup: lookup.raw(true), begin, commit, rollback, changes: changes.raw(true), dataVersion: dataVersion.raw(true) };
        memo.clear();
        memoVersion = '';
      }
    } catch (e) {
      for (const { reject } of lookups) reject(e);
      return;
    }
    const { lookup, begin, commit, rollback, changes, dataVersion } = prepared;
    const outside = !connection.inTransaction;
    // The version first, on its own: when the memo answers every lookup (a busy server on a database
    // nobody wrote to), that is all the turn reads. Rows read after it are at least as new as the
    // version they are remembered under, and any later write moves the version and clears them.
    const remember = outside && memoHolds(changes, dataVersion);
    const pending: [Lookup, string | undefined][] = [];
    for (const query of lookups) {
      const { params } = query;
      const key = remember && params.length === 1 && typeof params[0] === 'string' ? params[0] : undefined;
      const known = key === undefined ? undefined : memo.get(key);
      if (known) query.resolve(known);
      else pending.push([query, key]);
    }
    if (pending.length === 0) return;
    // Several lookups share one read lock (BEGIN is deferred: it takes the lock with the first
    // read); one runs alone, in the transaction of its own it would have anyway. Should BEGIN fail,
    // each runs in its own.
    const together = outside && pending.length > 1 && succeeds(begin);
    for (const [{ params, resolve, reject }, key] of pending) {
      try {
        const rows = lookup.all(...params);
        if (key !== undefined) {
          if (memo.size >= MEMO_ENTRIES) memo.clear();
          memo.set(key, rows);
        }
        resolve(rows);
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
