import { Inject, Injectable } from '@nestjs/common';
import { DataSource, EntityManager, Repository } from 'typeorm';
import { NegativeNarInfoEntity } from '../entities/negative-narinfo.entity';
import { TableSpec, tableSpec, upsert } from '../sql/bulk-write';
import { deleteByKeys } from '../sql/delete-by-keys';
import { Run } from '../sql/prepared-query';
import { SqlRunner } from '../sql/sql-runner';

/**
 * I/O of the remembered upstream misses that the instances of a cluster share. Expired rows are
 * left for sweepExpired: a read ignores nothing itself, it returns the expiry and the caller decides.
 */
@Injectable()
export class NegativeNarInfoRepository {
  private readonly repo: Repository<NegativeNarInfoEntity>;
  private readonly sql: SqlRunner;
  private readonly spec: TableSpec;
  private readonly expiryByHash: Run;

  constructor(@Inject(DataSource) source: DataSource | EntityManager) {
    this.repo = source.getRepository(NegativeNarInfoEntity);
    this.sql = new SqlRunner(source);
    this.spec = tableSpec(this.repo.metadata, 'hash');
    const q = (c: string) => this.sql.quote(c);
    // Asked on every narinfo miss: a prepared statement, like the hit's lookup.
    this.expiryByHash = this.sql.prepare({
      name: 'ncps_negative_expiry_by_hash',
      sql: `SELECT ${q('expires_at')} FROM ${q(this.spec.table)} WHERE ${q('hash')} = ${this.sql.params(1)}`,
    });
  }

  /** Records (or moves) the expiry of the miss of `hash`. */
  remember(hash: string, expiresAt: number): Promise<void> {
    return upsert(this.sql, this.spec, [{ hash, expiresAt }]);
  }

  /** When the remembered miss of `hash` expires (or expired), or null when none is remembered. */
  async expiryOf(hash: string): Promise<number | null> {
    const rows = await this.expiryByHash([hash]);
    // BIGINT arrives as a string from pg and mysql2.
    return rows.length === 0 ? null : Number(rows[0][0]);
  }

  /** Forgets the miss of `hash`; true when one was remembered. */
  async forget(hash: string): Promise<boolean> {
    return (await deleteByKeys(this.sql, this.spec.table, 'hash', [hash])) > 0;
  }

  /** Deletes every row expired at `now` (by the expiry index); returns how many. */
  async sweepExpired(now: number): Promise<number> {
    const q = (c: string) => this.sql.quote(c);
    const statement = `DELETE FROM ${q(this.spec.table)} WHERE ${q('expires_at')} <= ${this.sql.params(1)}`;
    return (await this.sql.write(() => this.sql.query(statement, [now]))).affected;
  }
}
