import { Inject, Injectable } from '@nestjs/common';
import { DataSource, EntityManager, MoreThan, Repository } from 'typeorm';
import { NarInfoEntity } from '../entities';
import { TableSpec, insertIgnoringDuplicates, tableSpec, upsert } from '../sql/bulk-write';
import { batches } from '../sql/batches';
import { deleteByKeys } from '../sql/delete-by-keys';
import { rowsPerStatement } from '../sql/dialect';
import { Run } from '../sql/prepared-query';
import { SqlRunner } from '../sql/sql-runner';
import { touchRows } from '../sql/touch';

export type NewNarInfo = Omit<NarInfoEntity, 'id'>;

/** What serving a narinfo needs of its row: its content and whether it may be signed. */
export type ServedNarInfo = Pick<
  NarInfoEntity,
  | 'storePath'
  | 'url'
  | 'compression'
  | 'fileHash'
  | 'fileSize'
  | 'narHash'
  | 'narSize'
  | 'refs'
  | 'deriver'
  | 'system'
  | 'ca'
  | 'sigs'
  | 'verified'
>;

/** The columns of ServedNarInfo, in the order findServedByHash reads them. */
const SERVED_COLUMNS = [
  'store_path',
  'url',
  'compression',
  'file_hash',
  'file_size',
  'nar_hash',
  'nar_size',
  'refs',
  'deriver',
  'system',
  'ca',
  'sigs',
  'verified',
] as const;

/** The first row of a findServedByHash lookup, or null for none. */
function servedFromRows(rows: unknown[][]): ServedNarInfo | null {
  if (rows.length === 0) return null;
  // Indexed, in SERVED_COLUMNS order (no destructuring: this runs on every hit). The drivers differ
  // in how BIGINT (a string from pg and mysql2) and booleans (0/1 from SQLite and MySQL) arrive.
  const row = rows[0];
  return {
    storePath: row[0] as string,
    url: row[1] as string,
    compression: row[2] as string,
    fileHash: row[3] as string | null,
    fileSize: row[4] === null ? null : Number(row[4]),
    narHash: row[5] as string,
    narSize: Number(row[6]),
    refs: row[7] as string,
    deriver: row[8] as string | null,
    system: row[9] as string | null,
    ca: row[10] as string | null,
    sigs: row[11] as string,
    verified: Number(row[12]) === 1,
  };
}

/** A narinfo the LRU may evict: the least recently accessed first. */
export interface LruCandidate {
  hash: string;
  /** The NAR it points at (= nar_files.key). */
  url: string;
  lastAccessedAt: number;
}

/** What a closure walk or the LRU needs of a narinfo: the NAR it points at and its References. */
export interface NarInfoReferences {
  hash: string;
  url: string;
  /** Space-separated store path base names, as stored (see NarInfoEntity.refs). */
  refs: string;
}

/** An LRU candidate with its row id (the tie-break of the LRU order) and its References. */
export interface LruCandidateWithReferences extends LruCandidate {
  id: number;
  refs: string;
}

/**
 * I/O of narinfo rows. Every method behaves the same on SQLite, PostgreSQL and MySQL. Built on a
 * DataSource (what Nest injects) its writes are retried on deadlocks; built on the EntityManager of
 * a transaction it takes part in that transaction.
 */
@Injectable()
export class NarInfoRepository {
  private readonly repo: Repository<NarInfoEntity>;
  private readonly sql: SqlRunner;
  private readonly spec: TableSpec;
  private readonly servedByHash: Run;

  constructor(@Inject(DataSource) source: DataSource | EntityManager) {
    this.repo = source.getRepository(NarInfoEntity);
    this.sql = new SqlRunner(source);
    this.spec = tableSpec(this.repo.metadata, 'hash');
    const q = (c: string) => this.sql.quote(c);
    this.servedByHash = this.sql.prepare({
      name: 'ncps_narinfo_served_by_hash',
      sql:
        `SELECT ${SERVED_COLUMNS.map((column) => q(column)).join(', ')} ` +
        `FROM ${q(this.spec.table)} WHERE ${q('hash')} = ${this.sql.params(1)}`,
    });
  }

  findByHash(hash: string): Promise<NarInfoEntity | null> {
    return this.repo.findOneBy({ hash });
  }

  /**
   * The row of `hash` as served, from one prepared statement on the unique hash index: what a
   * narinfo hit costs the database, without the entity's hydration.
   */
  findServedByHash(hash: string): Promise<ServedNarInfo | null> {
    return this.servedByHash([hash]).then(servedFromRows);
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

  /**
   * The `limit` least recently accessed narinfos after `after` in (last_accessed_at, id) order, with
   * their References: the LRU pages through the table with it when it must pass over candidates it
   * keeps. Reads `idx_narinfos_last_accessed_at` from the cursor on.
   */
  async findLeastRecentlyUsedAfter(
    after: { lastAccessedAt: number; id: number } | null,
    limit: number,
  ): Promise<LruCandidateWithReferences[]> {
    const q = (c: string) => this.sql.quote(c);
    const at = q('last_accessed_at');
    const where = after
      ? `WHERE ${at} >= ${this.sql.params(1)} AND (${at} > ${this.sql.params(1, 2)} OR ${q('id')} > ${this.sql.params(1, 3)}) `
      : '';
    const { rows } = await this.sql.query<{
      id: string | number;
      hash: string;
      url: string;
      refs: string;
      last_accessed_at: string | number;
    }>(
      `SELECT ${q('id')}, ${q('hash')}, ${q('url')}, ${q('refs')}, ${at} FROM ${q(this.spec.table)} ${where}` +
        `ORDER BY ${at}, ${q('id')} LIMIT ${this.sql.params(1, after ? 4 : 1)}`,
      after ? [after.lastAccessedAt, after.lastAccessedAt, after.id, limit] : [limit],
    );
    return rows.map((r) => ({ id: Number(r.id), hash: r.hash, url: r.url, refs: r.refs, lastAccessedAt: Number(r.last_accessed_at) }));
  }

  /** The stored narinfos among `hashes` with their NAR and References (unknown hashes are skipped). */
  async findReferencesOf(hashes: readonly string[]): Promise<NarInfoReferences[]> {
    const q = (c: string) => this.sql.quote(c);
    const found: NarInfoReferences[] = [];
    for (const batch of batches([...new Set(hashes)], rowsPerStatement(this.sql.dialect, 1))) {
      const { rows } = await this.sql.query<NarInfoReferences>(
        `SELECT ${q('hash')}, ${q('url')}, ${q('refs')} FROM ${q(this.spec.table)} WHERE ${q('hash')} IN (${this.sql.params(batch.length)})`,
        batch,
      );
      found.push(...rows.map((r) => ({ hash: r.hash, url: r.url, refs: r.refs })));
    }
    return found;
  }

  /**
   * Hash and References of the rows after `afterId` in id order, `limit` at a time: a pass over the
   * whole reference graph (the LRU counts who refers to its candidates with it).
   */
  async pageReferencesAfterId(afterId: number, limit: number): Promise<Array<{ id: number; hash: string; refs: string }>> {
    const q = (c: string) => this.sql.quote(c);
    const { rows } = await this.sql.query<{ id: string | number; hash: string; refs: string }>(
      `SELECT ${q('id')}, ${q('hash')}, ${q('refs')} FROM ${q(this.spec.table)} WHERE ${q('id')} > ${this.sql.params(1)} ` +
        `ORDER BY ${q('id')} LIMIT ${this.sql.params(1, 2)}`,
      [afterId, limit],
    );
    return rows.map((r) => ({ id: Number(r.id), hash: r.hash, refs: r.refs }));
  }

  /** Rows in id order after `afterId`, for copying the table in resumable batches. */
  pageAfterId(afterId: number, limit: number): Promise<NarInfoEntity[]> {
    return this.repo.find({ where: { id: MoreThan(afterId) }, order: { id: 'ASC' }, take: limit });
  }
}
