import { Inject, Injectable } from '@nestjs/common';
import { DataSource, EntityManager, Repository } from 'typeorm';
import { ConfigEntryEntity } from '../entities';
import { TableSpec, insertIgnoringDuplicates, tableSpec, upsert } from '../sql/bulk-write';
import { SqlRunner } from '../sql/sql-runner';

/** Shared settings kept in the database. */
@Injectable()
export class ConfigRepository {
  private readonly repo: Repository<ConfigEntryEntity>;
  private readonly sql: SqlRunner;
  private readonly spec: TableSpec;

  constructor(@Inject(DataSource) source: DataSource | EntityManager) {
    this.repo = source.getRepository(ConfigEntryEntity);
    this.sql = new SqlRunner(source);
    this.spec = tableSpec(this.repo.metadata, 'key');
  }

  async get(key: string): Promise<string | null> {
    return (await this.repo.findOneBy({ key }))?.value ?? null;
  }

  /**
   * Stores `value` unless the key already has one, and returns what is stored: when several instances
   * race to set it, all of them end up with the winner's value.
   */
  async getOrInsert(key: string, value: string): Promise<string> {
    await insertIgnoringDuplicates(this.sql, this.spec, [{ key, value }]);
    const stored = await this.get(key);
    if (stored === null) throw new Error(`config entry ${key} vanished right after insert`);
    return stored;
  }

  /** Stores `value`, replacing any value the key had. */
  set(key: string, value: string): Promise<void> {
    return upsert(this.sql, this.spec, [{ key, value }]);
  }

  /** Every entry, in key order. */
  all(): Promise<ConfigEntryEntity[]> {
    return this.repo.find({ order: { key: 'ASC' } });
  }
}
