import { batches } from './batches';
import { rowsPerStatement } from './dialect';
import { SqlRunner } from './sql-runner';

/** Deletes the rows whose `keyColumn` is one of `keys`, in batches; returns how many went. */
export async function deleteByKeys(sql: SqlRunner, table: string, keyColumn: string, keys: readonly string[]): Promise<number> {
  let deleted = 0;
  for (const batch of batches([...keys].sort(), rowsPerStatement(sql.dialect, 1))) {
    const statement = `DELETE FROM ${sql.quote(table)} WHERE ${sql.quote(keyColumn)} IN (${sql.params(batch.length)})`;
    deleted += (await sql.write(() => sql.query(statement, batch))).affected;
  }
  return deleted;
}
