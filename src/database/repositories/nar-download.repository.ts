import { Inject, Injectable } from '@nestjs/common';
import { DataSource, EntityManager, MoreThan, Repository } from 'typeorm';
import { NarDownloadEntity } from '../entities/nar-download.entity';
import { TableSpec, tableSpec, upsert } from '../sql/bulk-write';
import { SqlRunner } from '../sql/sql-runner';

/**
 * I/O of the in-progress download announcements shared by the instances of a cluster. Writes go
 * through SqlRunner like the other repositories': retried on deadlocks, queued on SQLite.
 */
@Injectable()
export class NarDownloadRepository {
  private readonly repo: Repository<NarDownloadEntity>;
  private readonly sql: SqlRunner;
  private readonly spec: TableSpec;

  constructor(@Inject(DataSource) source: DataSource | EntityManager) {
    this.repo = source.getRepository(NarDownloadEntity);
    this.sql = new SqlRunner(source);
    this.spec = tableSpec(this.repo.metadata, 'key');
  }

  /** Records (or refreshes) that `ownerUrl` is downloading `key` until `expiresAt`. */
  announce(key: string, ownerUrl: string, startedAt: number, expiresAt: number): Promise<void> {
    return upsert(this.sql, this.spec, [{ key, ownerUrl, startedAt, expiresAt }]);
  }

  /** The live announcement for `key`, if any. */
  findActive(key: string, now: number): Promise<NarDownloadEntity | null> {
    return this.repo.findOneBy({ key, expiresAt: MoreThan(now) });
  }

  /** Removes our announcement (only ours: another owner may have taken the download over). */
  async withdraw(key: string, ownerUrl: string): Promise<void> {
    const q = (c: string) => this.sql.quote(c);
    await this.sql.write(() =>
      this.sql.query(
        `DELETE FROM ${q(this.spec.table)} WHERE ${q('key')} = ${this.sql.params(1)} AND ${q('owner_url')} = ${this.sql.params(1, 2)}`,
        [key, ownerUrl],
      ),
    );
  }
}
