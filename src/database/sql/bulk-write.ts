import { EntityMetadata } from 'typeorm';
import { MAX_STATEMENT_BYTES, approximateSize, batches } from './batches';
import { rowsPerStatement } from './dialect';
import { SqlRunner } from './sql-runner';

/** A table as the bulk writers see it: the columns they write and the natural key rows conflict on. */
export interface TableSpec {
  table: string;
  columns: ReadonlyArray<{ name: string; property: string }>;
  naturalKey: string;
}

/** Every column but a generated id, from the entity's metadata (so the list never drifts). */
export function tableSpec(metadata: EntityMetadata, naturalKey: string): TableSpec {
  const columns = metadata.columns.filter((c) => !c.isGenerated).map((c) => ({ name: c.databaseName, property: c.propertyName }));
  return { table: metadata.tableName, columns, naturalKey };
}

/**
 * Inserts the rows whose natural key is not in the table yet and skips the others, without an
 * error even when another connection inserts the same key at the same moment. Not INSERT OR IGNORE
 * / INSERT IGNORE: those also turn NOT NULL and too-long-value errors into silent data changes.
 */
export async function insertIgnoringDuplicates(sql: SqlRunner, spec: TableSpec, rows: readonly object[]): Promise<void> {
  const key = sql.quote(spec.naturalKey);
  const onConflict = sql.dialect === 'mysql' ? `ON DUPLICATE KEY UPDATE ${key} = ${key}` : `ON CONFLICT (${key}) DO NOTHING`;
  await writeInBatches(sql, spec, rows, onConflict);
}

/**
 * Inserts the rows, or overwrites every column but `keep` (and the natural key) of an existing row
 * with the same natural key. Within one call the last row for a key wins.
 */
export async function upsert(sql: SqlRunner, spec: TableSpec, rows: readonly object[], keep: readonly string[] = []): Promise<void> {
  const updated = spec.columns.map((c) => c.name).filter((c) => c !== spec.naturalKey && !keep.includes(c));
  const assignments = updated.map((c) =>
    sql.dialect === 'mysql' ? `${sql.quote(c)} = VALUES(${sql.quote(c)})` : `${sql.quote(c)} = excluded.${sql.quote(c)}`,
  );
  const onConflict =
    sql.dialect === 'mysql'
      ? `ON DUPLICATE KEY UPDATE ${assignments.join(', ')}`
      : `ON CONFLICT (${sql.quote(spec.naturalKey)}) DO UPDATE SET ${assignments.join(', ')}`;
  // PostgreSQL refuses to update one row twice in a statement, so keep one row per key.
  const keyProperty = propertyOf(spec, spec.naturalKey);
  const lastPerKey = new Map(rows.map((r) => [(r as Record<string, unknown>)[keyProperty], r]));
  await writeInBatches(sql, spec, [...lastPerKey.values()], onConflict);
}

async function writeInBatches(sql: SqlRunner, spec: TableSpec, rows: readonly object[], onConflict: string): Promise<void> {
  const keyIndex = spec.columns.findIndex((c) => c.name === spec.naturalKey);
  // Rows in key order take index locks in the same order in every writer, which avoids most deadlocks.
  const valueRows = rows
    .map((row) => spec.columns.map((c) => (row as Record<string, unknown>)[c.property]))
    .sort((a, b) => compare(a[keyIndex], b[keyIndex]));
  const columnList = spec.columns.map((c) => sql.quote(c.name)).join(', ');
  const width = spec.columns.length;
  for (const batch of batches(valueRows, rowsPerStatement(sql.dialect, width), MAX_STATEMENT_BYTES, approximateSize)) {
    const tuples = batch.map((_, i) => `(${sql.params(width, i * width + 1)})`).join(', ');
    const statement = `INSERT INTO ${sql.quote(spec.table)} (${columnList}) VALUES ${tuples} ${onConflict}`;
    await sql.write(() => sql.query(statement, batch.flat()));
  }
}

function propertyOf(spec: TableSpec, column: string): string {
  const found = spec.columns.find((c) => c.name === column);
  if (!found) throw new Error(`${spec.table} has no column ${column}`);
  return found.property;
}

function compare(a: unknown, b: unknown): number {
  return String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0;
}
