import { Injectable } from '@nestjs/common';
import { DataSource, In, Repository } from 'typeorm';
import { NarInfoEntity } from '../entities';

export type NewNarInfo = Omit<NarInfoEntity, 'id'>;

/** I/O of narinfo rows. Every method works the same on SQLite, PostgreSQL and MySQL. */
@Injectable()
export class NarInfoRepository {
  private readonly repo: Repository<NarInfoEntity>;

  constructor(dataSource: DataSource) {
    this.repo = dataSource.getRepository(NarInfoEntity);
  }

  findByHash(hash: string): Promise<NarInfoEntity | null> {
    return this.repo.findOneBy({ hash });
  }

  /** Inserts unless a row with this hash exists (two instances inserting at once: one row, no error). */
  async insertIfAbsent(row: NewNarInfo): Promise<void> {
    await this.repo.createQueryBuilder().insert().values(row).orIgnore().execute();
  }

  /** Inserts or replaces every column but the creation time (uploads may overwrite). */
  async upsert(row: NewNarInfo): Promise<void> {
    const columns = this.repo.metadata.columns
      .map((c) => c.databaseName)
      .filter((c) => c !== 'id' && c !== 'hash' && c !== 'created_at');
    await this.repo.createQueryBuilder().insert().values(row).orUpdate(columns, ['hash']).execute();
  }

  async deleteByHash(hash: string): Promise<boolean> {
    const result = await this.repo.delete({ hash });
    return (result.affected ?? 0) > 0;
  }

  /** How many narinfos point at the NAR stored under `url`. */
  countByUrl(url: string): Promise<number> {
    return this.repo.countBy({ url });
  }

  /** Records access times gathered in memory (one UPDATE per distinct time, not per request). */
  async touch(lastAccess: ReadonlyMap<string, number>): Promise<void> {
    for (const [time, hashes] of groupByValue(lastAccess)) {
      await this.repo.update({ hash: In(hashes) }, { lastAccessedAt: time });
    }
  }
}

/** Inverts a key → value map into value → keys, so rows touched at the same moment share one query. */
export function groupByValue<K>(map: ReadonlyMap<K, number>): Map<number, K[]> {
  const groups = new Map<number, K[]>();
  for (const [key, value] of map) {
    const list = groups.get(value) ?? [];
    list.push(key);
    groups.set(value, list);
  }
  return groups;
}
