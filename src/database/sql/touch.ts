import { batches } from './batches';
import { rowsPerStatement } from './dialect';
import { SqlRunner } from './sql-runner';

/**
 * Sets `last_accessed_at` of many rows in a few statements: one UPDATE per batch of keys, with a
 * CASE giving each key its own time. Times only move forward (an instance flushing late cannot make
 * an entry look older than another instance saw it), and keys that are not in the table are ignored.
 */
export async function touchRows(sql: SqlRunner, table: string, keyColumn: string, lastAccess: ReadonlyMap<string, number>): Promise<void> {
  const key = sql.quote(keyColumn);
  const column = sql.quote('last_accessed_at');
  const greatest = sql.dialect === 'sqlite' ? 'MAX' : 'GREATEST';
  // PostgreSQL cannot infer the type of a bare THEN parameter.
  const time = (n: number) => (sql.dialect === 'postgres' ? `$${n}::bigint` : '?');
  // Sorted keys lock rows in the same order in every instance, which avoids most deadlocks.
  const entries = [...lastAccess].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  for (const batch of batches(entries, rowsPerStatement(sql.dialect, 3))) {
    const whens = batch.map((_, i) => `WHEN ${sql.params(1, 2 * i + 1)} THEN ${time(2 * i + 2)}`).join(' ');
    const inList = sql.params(batch.length, 2 * batch.length + 1);
    const statement =
      `UPDATE ${sql.quote(table)} SET ${column} = ${greatest}(${column}, CASE ${key} ${whens} END) ` + `WHERE ${key} IN (${inList})`;
    const params = [...batch.flat(), ...batch.map(([k]) => k)];
    await sql.write(() => sql.query(statement, params));
  }
}
