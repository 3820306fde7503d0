import { setImmediate as nextTurn } from 'node:timers/promises';
import { batches } from './batches';
import { rowsPerStatement } from './dialect';
import { SqlRunner } from './sql-runner';

/** Keys sharing one time are written by time: one UPDATE per time and batch, the keys found by the index. */
const MIN_KEYS_PER_TIME = 8;
/**
 * Keys with times of their own go in a CASE, which the database evaluates branch by branch for
 * every row it updates: the cost grows with the square of the batch, so the batch stays small.
 */
const KEYS_PER_CASE = 100;
/**
 * better-sqlite3 runs each statement on the event loop itself (a 1 000-row UPDATE takes milliseconds,
 * every request waiting): there, statements are smaller and a turn of the loop passes between them.
 */
const SQLITE_KEYS_PER_STATEMENT = 200;

/**
 * Sets `last_accessed_at` of many rows in a few statements. Times only move forward (an instance
 * flushing late cannot make an entry look older than another instance saw it), and keys that are
 * not in the table are ignored. The access tracker rounds times to the second, so a flush holds a
 * handful of distinct times for any number of keys: the keys of a time are written together by
 * `WHERE key IN (...)`, rows already that recent left alone. Keys whose time few others share go
 * in statements that give each its own time with a CASE. Keys are sorted, so instances lock rows
 * in the same order, which avoids most deadlocks.
 */
export async function touchRows(sql: SqlRunner, table: string, keyColumn: string, lastAccess: ReadonlyMap<string, number>): Promise<void> {
  const byTime = new Map<number, string[]>();
  for (const [key, time] of lastAccess) {
    const keys = byTime.get(time);
    if (keys) keys.push(key);
    else byTime.set(time, [key]);
  }
  const sqlite = sql.dialect === 'sqlite';
  const statements: (() => Promise<void>)[] = [];
  const scattered: [string, number][] = [];
  for (const [time, keys] of [...byTime].sort(([a], [b]) => a - b)) {
    if (keys.length < MIN_KEYS_PER_TIME) {
      for (const key of keys) scattered.push([key, time]);
      continue;
    }
    const perStatement = sqlite ? SQLITE_KEYS_PER_STATEMENT : rowsPerStatement(sql.dialect, 1) - 2;
    for (const batch of batches(keys.sort(byKey), perStatement)) statements.push(() => touchAt(sql, table, keyColumn, time, batch));
  }
  scattered.sort(([a], [b]) => byKey(a, b));
  for (const batch of batches(scattered, Math.min(KEYS_PER_CASE, rowsPerStatement(sql.dialect, 3)))) {
    statements.push(() => touchEach(sql, table, keyColumn, batch));
  }
  for (const [i, statement] of statements.entries()) {
    if (sqlite && i > 0) await nextTurn();
    await statement();
  }
}

const byKey = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function timeParameter(sql: SqlRunner, n: number): string {
  // PostgreSQL cannot infer the type of a bare parameter in a CASE or a comparison with a BIGINT.
  return sql.dialect === 'postgres' ? `$${n}::bigint` : '?';
}

/** One time for every key of `keys`. Parameters: the time twice, then the keys (in text order, for `?`). */
async function touchAt(sql: SqlRunner, table: string, keyColumn: string, time: number, keys: string[]): Promise<void> {
  const column = sql.quote('last_accessed_at');
  const statement =
    `UPDATE ${sql.quote(table)} SET ${column} = ${timeParameter(sql, 1)} ` +
    `WHERE ${column} < ${timeParameter(sql, 2)} AND ${sql.quote(keyColumn)} IN (${sql.params(keys.length, 3)})`;
  await sql.write(() => sql.query(statement, [time, time, ...keys]));
}

/** Each key its own time. */
async function touchEach(sql: SqlRunner, table: string, keyColumn: string, batch: [string, number][]): Promise<void> {
  const key = sql.quote(keyColumn);
  const column = sql.quote('last_accessed_at');
  const greatest = sql.dialect === 'sqlite' ? 'MAX' : 'GREATEST';
  const whens = batch.map((_, i) => `WHEN ${sql.params(1, 2 * i + 1)} THEN ${timeParameter(sql, 2 * i + 2)}`).join(' ');
  const statement =
    `UPDATE ${sql.quote(table)} SET ${column} = ${greatest}(${column}, CASE ${key} ${whens} END) ` +
    `WHERE ${key} IN (${sql.params(batch.length, 2 * batch.length + 1)})`;
  await sql.write(() => sql.query(statement, [...batch.flat(), ...batch.map(([k]) => k)]));
}
