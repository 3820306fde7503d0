import { Inject, Injectable } from '@nestjs/common';
import { DataSource, EntityManager, MoreThan, Repository } from 'typeorm';
import { NarFileEntity, NarInfoEntity } from '../entities';
import { batches } from '../sql/batches';
import { TableSpec, insertIgnoringDuplicates, tableSpec } from '../sql/bulk-write';
import { deleteByKeys } from '../sql/delete-by-keys';
import { rowsPerStatement } from '../sql/dialect';
import { SqlRunner } from '../sql/sql-runner';
import { touchRows } from '../sql/touch';

export type NewNarFile = Omit<NarFileEntity, 'id'>;

/** A stored NAR no narinfo points at any more. */
export interface UnreferencedNarFile {
  key: string;
  fileSize: number;
  lastAccessedAt: number;
}

interface UnreferencedRow {
  key: string;
  file_size: string | number;
  last_accessed_at: string | number;
}

const toUnreferenced = (r: UnreferencedRow): UnreferencedNarFile => ({
  key: r.key,
  fileSize: Number(r.file_size),
  lastAccessedAt: Number(r.last_accessed_at),
});

/** I/O of the rows describing stored NAR files. DataSource vs transaction: see NarInfoRepository. */
@Injectable()
export class NarFileRepository {
  private readonly repo: Repository<NarFileEntity>;
  private readonly sql: SqlRunner;
  private readonly spec: TableSpec;
  private readonly narinfos: string;

  constructor(@Inject(DataSource) source: DataSource | EntityManager) {
    this.repo = source.getRepository(NarFileEntity);
    this.sql = new SqlRunner(source);
    this.spec = tableSpec(this.repo.metadata, 'key');
    this.narinfos = source.getRepository(NarInfoEntity).metadata.tableName;
  }

  findByKey(key: string): Promise<NarFileEntity | null> {
    return this.repo.findOneBy({ key });
  }

  /** Inserts unless a row with this key exists (concurrent inserts: one row, no error). */
  insertIfAbsent(row: NewNarFile): Promise<void> {
    return insertIgnoringDuplicates(this.sql, this.spec, [row]);
  }

  insertManyIfAbsent(rows: readonly NewNarFile[]): Promise<void> {
    return insertIgnoringDuplicates(this.sql, this.spec, rows);
  }

  async deleteByKey(key: string): Promise<boolean> {
    return (await this.deleteByKeys([key])) > 0;
  }

  /** Deletes the rows with these keys; returns how many there were. */
  deleteByKeys(keys: readonly string[]): Promise<number> {
    return deleteByKeys(this.sql, this.spec.table, 'key', keys);
  }

  /** Total size of the stored NAR files, the number the LRU compares with the size limit. */
  async sumStoredBytes(): Promise<number> {
    const { rows } = await this.sql.query<{ total: string | number | null }>(
      `SELECT COALESCE(SUM(${this.sql.quote('file_size')}), 0) AS total FROM ${this.sql.quote(this.spec.table)}`,
    );
    // pg returns SUM(bigint) as a numeric string, mysql2 as a decimal string.
    return Number(rows[0]?.total ?? 0);
  }

  /** Total size of the stored NAR files among `keys` (unknown keys count nothing; duplicates once). */
  async sumStoredBytesAmong(keys: readonly string[]): Promise<number> {
    let total = 0;
    for (const batch of batches([...new Set(keys)], rowsPerStatement(this.sql.dialect, 1))) {
      const { rows } = await this.sql.query<{ total: string | number | null }>(
        `SELECT COALESCE(SUM(${this.sql.quote('file_size')}), 0) AS total FROM ${this.sql.quote(this.spec.table)} ` +
          `WHERE ${this.sql.quote('key')} IN (${this.sql.params(batch.length)})`,
        batch,
      );
      total += Number(rows[0]?.total ?? 0);
    }
    return total;
  }

  countStored(): Promise<number> {
    return this.repo.count();
  }

  /** Records access times (key → epoch ms); see NarInfoRepository.touch. */
  touch(lastAccess: ReadonlyMap<string, number>): Promise<void> {
    return touchRows(this.sql, this.spec.table, 'key', lastAccess);
  }

  /**
   * NAR files no narinfo points at (no narinfos.url equals their key), least recently accessed first.
   * A sweep: when few files are unreferenced it reads the whole table (about 1 s per million rows,
   * far more on MySQL when the tables exceed its buffer pool; see bench/README.md). To clean up
   * after deleting narinfos, ask findUnreferencedAmong about their URLs instead.
   */
  async findUnreferenced(limit: number): Promise<UnreferencedNarFile[]> {
    const { rows } = await this.sql.query<UnreferencedRow>(
      `${this.selectUnreferenced()} ORDER BY f.${this.sql.quote('last_accessed_at')}, f.${this.sql.quote('id')} ` +
        `LIMIT ${this.sql.params(1)}`,
      [limit],
    );
    return rows.map(toUnreferenced);
  }

  /**
   * Those of `keys` that are NAR files no narinfo points at, least recently accessed first: after
   * the LRU deleted narinfos, which of their NARs to delete too. Index lookups only, batched.
   */
  async findUnreferencedAmong(keys: readonly string[]): Promise<UnreferencedNarFile[]> {
    const found: UnreferencedNarFile[] = [];
    for (const batch of batches([...new Set(keys)].sort(), rowsPerStatement(this.sql.dialect, 1))) {
      const { rows } = await this.sql.query<UnreferencedRow>(
        `${this.selectUnreferenced()} AND f.${this.sql.quote('key')} IN (${this.sql.params(batch.length)})`,
        batch,
      );
      found.push(...rows.map(toUnreferenced));
    }
    return found.sort((a, b) => a.lastAccessedAt - b.lastAccessedAt);
  }

  private selectUnreferenced(): string {
    const q = (c: string) => this.sql.quote(c);
    return (
      `SELECT f.${q('key')}, f.${q('file_size')}, f.${q('last_accessed_at')} FROM ${q(this.spec.table)} f ` +
      `WHERE NOT EXISTS (SELECT 1 FROM ${q(this.narinfos)} n WHERE n.${q('url')} = f.${q('key')})`
    );
  }

  /** Rows in id order after `afterId`, for copying the table in resumable batches. */
  pageAfterId(afterId: number, limit: number): Promise<NarFileEntity[]> {
    return this.repo.find({ where: { id: MoreThan(afterId) }, order: { id: 'ASC' }, take: limit });
  }
}
