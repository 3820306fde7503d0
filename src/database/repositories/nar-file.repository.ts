import { Injectable } from '@nestjs/common';
import { DataSource, In, Repository } from 'typeorm';
import { NarFileEntity } from '../entities';
import { groupByValue } from './narinfo.repository';

export type NewNarFile = Omit<NarFileEntity, 'id'>;

/** I/O of the rows describing stored NAR files. */
@Injectable()
export class NarFileRepository {
  private readonly repo: Repository<NarFileEntity>;

  constructor(dataSource: DataSource) {
    this.repo = dataSource.getRepository(NarFileEntity);
  }

  findByKey(key: string): Promise<NarFileEntity | null> {
    return this.repo.findOneBy({ key });
  }

  async insertIfAbsent(row: NewNarFile): Promise<void> {
    await this.repo.createQueryBuilder().insert().values(row).orIgnore().execute();
  }

  async deleteByKey(key: string): Promise<boolean> {
    const result = await this.repo.delete({ key });
    return (result.affected ?? 0) > 0;
  }

  async sumStoredBytes(): Promise<number> {
    const row = await this.repo.createQueryBuilder('f').select('COALESCE(SUM(f.file_size), 0)', 'total').getRawOne();
    return Number(row?.total ?? 0);
  }

  countStored(): Promise<number> {
    return this.repo.count();
  }

  async touch(lastAccess: ReadonlyMap<string, number>): Promise<void> {
    for (const [time, keys] of groupByValue(lastAccess)) {
      await this.repo.update({ key: In(keys) }, { lastAccessedAt: time });
    }
  }
}
