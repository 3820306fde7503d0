import { Inject, Injectable } from '@nestjs/common';
import { DataSource, EntityManager, MoreThan, Repository } from 'typeorm';
import { ArtifactEntity, NarInfoEntity } from '../entities';
import { TableSpec, insertIgnoringDuplicates, tableSpec } from '../sql/bulk-write';
import { deleteByKeys } from '../sql/delete-by-keys';
import { SqlRunner } from '../sql/sql-runner';
import { touchRows } from '../sql/touch';

export type NewArtifact = ArtifactEntity;

/** What the LRU needs of a stored artifact to delete it. */
export interface StoredArtifact {
  path: string;
  storageKey: string;
  fileSize: number;
  lastAccessedAt: number;
}

interface StoredRow {
  path: string;
  storage_key: string;
  file_size: string | number;
  last_accessed_at: string | number;
}

const toStored = (r: StoredRow): StoredArtifact => ({
  path: r.path,
  storageKey: r.storage_key,
  fileSize: Number(r.file_size),
  lastAccessedAt: Number(r.last_accessed_at),
});

/**
 * I/O of the rows describing stored artifacts (listings, logs, realisations, build traces,
 * debuginfo). Behaves the same on SQLite, PostgreSQL and MySQL.
 */
@Injectable()
export class ArtifactRepository {
  private readonly repo: Repository<ArtifactEntity>;
  private readonly sql: SqlRunner;
  private readonly spec: TableSpec;
  private readonly narinfos: string;

  constructor(@Inject(DataSource) source: DataSource | EntityManager) {
    this.repo = source.getRepository(ArtifactEntity);
    this.sql = new SqlRunner(source);
    this.spec = tableSpec(this.repo.metadata, 'path');
    this.narinfos = source.getRepository(NarInfoEntity).metadata.tableName;
  }

  findByPath(path: string): Promise<ArtifactEntity | null> {
    return this.repo.findOneBy({ path });
  }

  /** Inserts unless a row with this path exists (concurrent inserts: one row, no error; the first stays). */
  insertIfAbsent(row: NewArtifact): Promise<void> {
    return insertIgnoringDuplicates(this.sql, this.spec, [row]);
  }

  insertManyIfAbsent(rows: readonly NewArtifact[]): Promise<void> {
    return insertIgnoringDuplicates(this.sql, this.spec, rows);
  }

  count(): Promise<number> {
    return this.repo.count();
  }

  /** Rows in path order after `afterPath` ('' for the first page), for copying the table in resumable batches. */
  pageAfterPath(afterPath: string, limit: number): Promise<ArtifactEntity[]> {
    return this.repo.find({ where: { path: MoreThan(afterPath) }, order: { path: 'ASC' }, take: limit });
  }

  async deleteByPath(path: string): Promise<boolean> {
    return (await deleteByKeys(this.sql, this.spec.table, 'path', [path])) > 0;
  }

  /** Records access times (path → epoch ms), forward only; see NarInfoRepository.touch. */
  touch(lastAccess: ReadonlyMap<string, number>): Promise<void> {
    return touchRows(this.sql, this.spec.table, 'path', lastAccess);
  }

  /** Total size of the stored artifacts: the LRU counts it with the NARs against --cache-max-size. */
  async sumStoredBytes(): Promise<number> {
    const { rows } = await this.sql.query<{ total: string | number | null }>(
      `SELECT COALESCE(SUM(${this.sql.quote('file_size')}), 0) AS total FROM ${this.sql.quote(this.spec.table)}`,
    );
    return Number(rows[0]?.total ?? 0);
  }

  /** The artifacts that belong to the narinfo `hash` (its `.ls`): evicted with it. */
  async findOwnedBy(hash: string): Promise<StoredArtifact[]> {
    const q = (c: string) => this.sql.quote(c);
    const { rows } = await this.sql.query<StoredRow>(
      `SELECT ${q('path')}, ${q('storage_key')}, ${q('file_size')}, ${q('last_accessed_at')} FROM ${q(this.spec.table)} ` +
        `WHERE ${q('narinfo_hash')} = ${this.sql.params(1)}`,
      [hash],
    );
    return rows.map(toStored);
  }

  /**
   * Up to `limit` artifacts that no stored narinfo owns (logs, realisations, build traces,
   * debuginfo, and listings whose narinfo is not stored), least recently accessed first, among
   * those last accessed before `before`: the LRU evicts them by their own access time.
   */
  async findUnownedAccessedBefore(before: number, limit: number): Promise<StoredArtifact[]> {
    const q = (c: string) => this.sql.quote(c);
    const { rows } = await this.sql.query<StoredRow>(
      `SELECT a.${q('path')}, a.${q('storage_key')}, a.${q('file_size')}, a.${q('last_accessed_at')} FROM ${q(this.spec.table)} a ` +
        `WHERE a.${q('last_accessed_at')} < ${this.sql.params(1)} AND (a.${q('narinfo_hash')} IS NULL OR NOT EXISTS ` +
        `(SELECT 1 FROM ${q(this.narinfos)} n WHERE n.${q('hash')} = a.${q('narinfo_hash')})) ` +
        `ORDER BY a.${q('last_accessed_at')}, a.${q('path')} LIMIT ${this.sql.params(1, 2)}`,
      [before, limit],
    );
    return rows.map(toStored);
  }
}
