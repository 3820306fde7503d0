import { DataSource } from 'typeorm';

/** A table as the database itself reports it, in terms comparable across dialects. */
export interface TableShape {
  /** By name: a type family (`int64`, `varchar(255)`, `text`) and nullability. */
  columns: Record<string, { type: string; nullable: boolean }>;
  primaryKey: string[];
  /** Secondary indexes by name: their columns in order and uniqueness. */
  indexes: Record<string, { columns: string[]; unique: boolean }>;
}

/** Reads a table's shape from the catalog (SQLite pragmas, information_schema, pg_index). */
export async function describeTable(ds: DataSource, table: string): Promise<TableShape> {
  switch (ds.options.type) {
    case 'better-sqlite3':
      return describeSqlite(ds, table);
    case 'postgres':
      return describePostgres(ds, table);
    case 'mysql':
      return describeMysql(ds, table);
    default:
      throw new Error(`no introspection for ${ds.options.type}`);
  }
}

/**
 * SQL type → family. SQLite keeps the declared type; its INTEGER is 64-bit (and the rowid), so it
 * counts as int64; MySQL's MEDIUMTEXT is our TEXT (its plain TEXT is too small).
 */
function family(type: string, length?: number | null): string {
  const t = type.toLowerCase();
  if (t === 'bigint' || t === 'integer') return 'int64';
  if (t === 'int' || t === 'int4') return 'int32';
  if (t === 'boolean' || t === 'tinyint') return 'bool'; // MySQL's BOOLEAN is TINYINT(1)
  if (t === 'text' || t === 'mediumtext' || t === 'longtext') return 'text';
  const varchar = /^(?:varchar|character varying)(?:\((\d+)\))?$/.exec(t);
  if (varchar) return `varchar(${varchar[1] ?? length})`;
  return `unknown:${t}`;
}

async function describeSqlite(ds: DataSource, table: string): Promise<TableShape> {
  const columns = await ds.query(`PRAGMA table_info("${table}")`);
  const shape: TableShape = { columns: {}, primaryKey: [], indexes: {} };
  for (const c of columns as Array<{ name: string; type: string; notnull: number; pk: number }>) {
    // A primary key column cannot hold NULL, whatever the pragma says of INTEGER PRIMARY KEY.
    shape.columns[c.name] = { type: family(c.type), nullable: c.notnull === 0 && c.pk === 0 };
    if (c.pk > 0) shape.primaryKey[c.pk - 1] = c.name;
  }
  for (const index of await ds.query<Array<{ name: string; unique: number; origin: string }>>(`PRAGMA index_list("${table}")`)) {
    if (index.origin === 'pk') continue;
    const cols = await ds.query<Array<{ seqno: number; name: string }>>(`PRAGMA index_info("${index.name}")`);
    shape.indexes[index.name] = { columns: cols.sort((a, b) => a.seqno - b.seqno).map((c) => c.name), unique: index.unique === 1 };
  }
  return shape;
}

async function describePostgres(ds: DataSource, table: string): Promise<TableShape> {
  const shape: TableShape = { columns: {}, primaryKey: [], indexes: {} };
  const columns = await ds.query(
    `SELECT column_name, data_type, is_nullable, character_maximum_length FROM information_schema.columns
     WHERE table_schema = current_schema() AND table_name = $1`,
    [table],
  );
  for (const c of columns as Array<{
    column_name: string;
    data_type: string;
    is_nullable: string;
    character_maximum_length: number | null;
  }>) {
    shape.columns[c.column_name] = { type: family(c.data_type, c.character_maximum_length), nullable: c.is_nullable === 'YES' };
  }
  const indexes = await ds.query(
    `SELECT i.relname AS name, ix.indisunique AS unique, ix.indisprimary AS primary,
            string_agg(a.attname, ',' ORDER BY k.ord) AS columns
     FROM pg_index ix
     JOIN pg_class t ON t.oid = ix.indrelid
     JOIN pg_class i ON i.oid = ix.indexrelid
     CROSS JOIN LATERAL unnest(ix.indkey) WITH ORDINALITY AS k(attnum, ord)
     JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
     WHERE t.relname = $1 AND t.relnamespace = current_schema()::regnamespace
     GROUP BY i.relname, ix.indisunique, ix.indisprimary`,
    [table],
  );
  for (const ix of indexes as Array<{ name: string; unique: boolean; primary: boolean; columns: string }>) {
    if (ix.primary) shape.primaryKey = ix.columns.split(',');
    else shape.indexes[ix.name] = { columns: ix.columns.split(','), unique: ix.unique };
  }
  return shape;
}

async function describeMysql(ds: DataSource, table: string): Promise<TableShape> {
  const shape: TableShape = { columns: {}, primaryKey: [], indexes: {} };
  const columns = await ds.query(
    `SELECT COLUMN_NAME AS name, DATA_TYPE AS type, IS_NULLABLE AS nullable, CHARACTER_MAXIMUM_LENGTH AS length
     FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ?`,
    [table],
  );
  for (const c of columns as Array<{ name: string; type: string; nullable: string; length: string | null }>) {
    shape.columns[c.name] = { type: family(c.type, c.length === null ? null : Number(c.length)), nullable: c.nullable === 'YES' };
  }
  const parts = await ds.query(
    `SELECT INDEX_NAME AS name, NON_UNIQUE AS nonUnique, COLUMN_NAME AS col FROM information_schema.statistics
     WHERE table_schema = DATABASE() AND table_name = ? ORDER BY INDEX_NAME, SEQ_IN_INDEX`,
    [table],
  );
  for (const p of parts as Array<{ name: string; nonUnique: string | number; col: string }>) {
    if (p.name === 'PRIMARY') {
      shape.primaryKey.push(p.col);
      continue;
    }
    shape.indexes[p.name] ??= { columns: [], unique: Number(p.nonUnique) === 0 };
    shape.indexes[p.name].columns.push(p.col);
  }
  return shape;
}
