import { Inject, Injectable } from '@nestjs/common';
import { DataSource, EntityManager, MoreThan, Repository } from 'typeorm';
import { NarInfoEntity } from '../entities';
import { TableSpec, insertIgnoringDuplicates, tableSpec, upsert } from '../sql/bulk-write';
import { deleteByKeys } from '../sql/delete-by-keys';
import { SqlRunner } from '../sql/sql-runner';
import { touchRows } from '../sql/touch';

export type NewNarInfo = Omit<NarInfoEntity, 'id'>;

/** A narinfo the LRU may evict: the least recently accessed first. */
export interface LruCandidate {
  hash: string;
  /** The NAR it points at (= nar_files.key). */
  url: string;
  lastAccessedAt: number;
}

/**
 * I/O of narinfo rows. Every method behaves the same on SQLite, PostgreSQL and MySQL. Built on a
 * DataSource (what Nest injects) its writes are retried on deadlocks; built on the EntityManager of
 * a transaction (see runInTransaction) it takes part in that transaction.
 */
@Injectable()
export class NarInfoRepository {
  private readonly repo: Repository<NarInfoEntity>;
  private readonly sql: SqlRunner;
  private readonly spec: TableSpec;

  constructor(@Inject(DataSource) source: DataSource | EntityManager) {
    this.repo = source.getRepository(NarInfoEntity);
    this.sql = new SqlRunner(source);
    this.spec = tableSpec(this.repo.metadata, 'hash');
  }

  findByHash(hash: string): Promise<NarInfoEntity | null> {
    return this.repo.findOneBy({ hash });
  }

  /** Inserts unless a row with this hash exists (two instances inserting at once: one row, no error). */
  insertIfAbsent(row: NewNarInfo): Promise<void> {
    return insertIgnoringDuplicates(this.sql, this.spec, [row]);
  }

  /** insertIfAbsent for many rows, in as few statements as the driver allows. */
  insertManyIfAbsent(rows: readonly NewNarInfo[]): Promise<void> {
    return insertIgnoringDuplicates(this.sql, this.spec, rows);
  }

  /** Inserts or replaces every column but the creation time (uploads may overwrite). */
  upsert(row: NewNarInfo): Promise<void> {
    return upsert(this.sql, this.spec, [row], ['created_at']);
  }

  /** A narinfo pointing at the NAR stored under `url` (several may; any of them describes the NAR). */
  findOneByUrl(url: string): Promise<NarInfoEntity | null> {
    return this.repo.findOneBy({ url });
  }

  async deleteByHash(hash: string): Promise<boolean> {
    return (await this.deleteByHashes([hash])) > 0;
  }

  /** Deletes the narinfos with these hashes; returns how many there were. */
  deleteByHashes(hashes: readonly string[]): Promise<number> {
    return deleteByKeys(this.sql, this.spec.table, 'hash', hashes);
  }

  /** How many narinfos point at the NAR stored under `url`. */
  countByUrl(url: string): Promise<number> {
    return this.repo.countBy({ url });
  }

  count(): Promise<number> {
    return this.repo.count();
  }

  /**
   * Records access times gathered in memory (hash → epoch ms), in a few statements however many
   * there are. Times only move forward; unknown hashes are ignored.
   */
  touch(lastAccess: ReadonlyMap<string, number>): Promise<void> {
    return touchRows(this.sql, this.spec.table, 'hash', lastAccess);
  }

  /** The `limit` least recently accessed narinfos, oldest first (ties in insertion order). */
  async findLeastRecentlyUsed(limit: number): Promise<LruCandidate[]> {
    const q = (c: string) => this.sql.quote(c);
    const { rows } = await this.sql.query<{ hash: string; url: string; last_accessed_at: string | number }>(
      `SELECT ${q('hash')}, ${q('url')}, ${q('last_accessed_at')} FROM ${q(this.spec.table)} ` +
        `ORDER BY ${q('last_accessed_at')}, ${q('id')} LIMIT ${this.sql.params(1)}`,
      [limit],
    );
    return rows.map((r) => ({ hash: r.hash, url: r.url, lastAccessedAt: Number(r.last_accessed_at) }));
  }

  /** Rows in id order after `afterId`, for copying the table in resumable batches. */
  pageAfterId(afterId: number, limit: number): Promise<NarInfoEntity[]> {
    return this.repo.find({ where: { id: MoreThan(afterId) }, order: { id: 'ASC' }, take: limit });
  }
}
