import { Injectable } from '@nestjs/common';
import { DataSource, Repository } from 'typeorm';
import { ConfigEntryEntity } from '../entities';

/** Shared settings kept in the database. */
@Injectable()
export class ConfigRepository {
  private readonly repo: Repository<ConfigEntryEntity>;

  constructor(dataSource: DataSource) {
    this.repo = dataSource.getRepository(ConfigEntryEntity);
  }

  async get(key: string): Promise<string | null> {
    return (await this.repo.findOneBy({ key }))?.value ?? null;
  }

  /**
   * Stores `value` unless the key already has one, and returns what is stored: when several instances
   * race to set it, all of them end up with the winner's value.
   */
  async getOrInsert(key: string, value: string): Promise<string> {
    await this.repo.createQueryBuilder().insert().values({ key, value }).orIgnore().execute();
    const stored = await this.get(key);
    if (stored === null) throw new Error(`config entry ${key} vanished right after insert`);
    return stored;
  }
}
