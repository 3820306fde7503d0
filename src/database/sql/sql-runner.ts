import { DataSource, EntityManager } from 'typeorm';
import { DatabaseDialect } from 'src/config/config';
import { withRetry } from '../retry';
import { dialectOf, parameter, quoteIdentifier } from './dialect';
import { PreparedStatement, Run, preparedQuery } from './prepared-query';
import { queueSqliteWrite } from './sqlite-write-queue';

export interface SqlResult<Row> {
  rows: Row[];
  affected: number;
}

/**
 * Runs hand-written SQL on a data source, or on the transaction an EntityManager belongs to. The
 * repositories write SQL themselves where TypeORM's builders differ per dialect in ways that matter
 * (INSERT OR IGNORE / INSERT IGNORE also swallow NOT NULL and truncation errors).
 */
export class SqlRunner {
  readonly dialect: DatabaseDialect;
  private readonly dataSource: DataSource;
  /** Set when bound to a transaction: statements run on its connection and are not retried alone. */
  private readonly manager?: EntityManager;

  constructor(source: DataSource | EntityManager) {
    if (source instanceof DataSource) {
      this.dataSource = source;
    } else {
      this.dataSource = source.connection;
      this.manager = source;
    }
    this.dialect = dialectOf(this.dataSource);
  }

  quote(identifier: string): string {
    return quoteIdentifier(this.dialect, identifier);
  }

  /** `count` parameter markers numbered from `first` (1-based), comma-separated. */
  params(count: number, first = 1): string {
    return Array.from({ length: count }, (_, i) => parameter(this.dialect, first + i)).join(', ');
  }

  async query<Row = Record<string, unknown>>(sql: string, params: readonly unknown[] = []): Promise<SqlResult<Row>> {
    const runner = this.manager?.queryRunner ?? this.dataSource.createQueryRunner();
    try {
      const result = await runner.query(sql, params.map(toDriverValue), true);
      return { rows: (result.records ?? []) as Row[], affected: result.affected ?? 0 };
    } finally {
      if (!this.manager) await runner.release();
    }
  }

  /**
   * A read of a hot path, prepared once (see preparedQuery). Bound to a transaction it is an ordinary
   * query on the transaction's connection, so that it sees what the transaction wrote.
   */
  prepare(statement: PreparedStatement): Run {
    // Rows of a query are objects in the SELECT's order (all three drivers keep it).
    if (this.manager) return async (params) => (await this.query(statement.sql, params)).rows.map((row) => Object.values(row));
    return preparedQuery(this.dataSource, statement);
  }

  /**
   * Runs a write. Outside a transaction it is retried on deadlock/busy errors (it must be idempotent)
   * and, on SQLite, queued behind this process's other writes and transactions. Inside a transaction
   * it just runs: the transaction as a whole is what gets retried.
   */
  write<T>(work: () => Promise<T>): Promise<T> {
    if (this.manager) return work();
    if (this.dialect !== 'sqlite') return withRetry(work);
    return withRetry(() => queueSqliteWrite(this.dataSource, work));
  }
}

/**
 * better-sqlite3 rejects `undefined` and booleans; every driver takes null for a missing value, and
 * 1/0 for a boolean column (SQLite INTEGER, MySQL TINYINT(1), PostgreSQL boolean from '1'/'0').
 */
function toDriverValue(value: unknown): unknown {
  if (typeof value === 'boolean') return value ? 1 : 0;
  return value === undefined ? null : value;
}
