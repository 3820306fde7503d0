import { DataSource } from 'typeorm';
import { DatabaseDialect } from 'src/config/config';

export function dialectOf(dataSource: DataSource): DatabaseDialect {
  const type = dataSource.options.type;
  switch (type) {
    case 'better-sqlite3':
      return 'sqlite';
    case 'postgres':
      return 'postgres';
    case 'mysql':
    case 'mariadb':
      return 'mysql';
    default:
      throw new Error(`unsupported TypeORM driver ${type}`);
  }
}

/**
 * Most bound parameters one statement may carry: SQLite's SQLITE_MAX_VARIABLE_NUMBER (32766 since
 * 3.32), PostgreSQL's 16-bit parameter count, MySQL's prepared-statement limit (mysql2's `query`
 * inlines values client side, but the packet limit below applies then).
 */
const PARAMETER_LIMITS: Record<DatabaseDialect, number> = { sqlite: 32766, postgres: 65535, mysql: 65535 };

/**
 * Rows per statement: large enough that bulk work is a few round trips, small enough that one
 * statement holds its locks briefly and stays far below MySQL's default max_allowed_packet (4 MiB on
 * old servers) for ordinary narinfos. Big rows are split by size as well (see batches.ts).
 */
const MAX_ROWS_PER_STATEMENT = 1000;

/** How many rows of `paramsPerRow` parameters fit in one statement. */
export function rowsPerStatement(dialect: DatabaseDialect, paramsPerRow: number): number {
  return Math.max(1, Math.min(MAX_ROWS_PER_STATEMENT, Math.floor(PARAMETER_LIMITS[dialect] / paramsPerRow)));
}

export function quoteIdentifier(dialect: DatabaseDialect, name: string): string {
  return dialect === 'mysql' ? `\`${name}\`` : `"${name}"`;
}

/** Positional parameter markers: `$n` for PostgreSQL, `?` elsewhere. `first` is 1-based. */
export function parameter(dialect: DatabaseDialect, first: number): string {
  return dialect === 'postgres' ? `$${first}` : '?';
}
