import { DataSource } from 'typeorm';
import { ConfigRepository } from './repositories/config.repository';
import { NarFileRepository } from './repositories/nar-file.repository';
import { NarInfoRepository } from './repositories/narinfo.repository';
import { withRetry } from './retry';
import { dialectOf } from './sql/dialect';
import { queueSqliteWrite } from './sql/sqlite-write-queue';

/** Repositories whose every statement runs in one transaction. */
export interface TransactionRepositories {
  narinfos: NarInfoRepository;
  narFiles: NarFileRepository;
  config: ConfigRepository;
}

/**
 * Runs `work` in a transaction and commits it, or rolls it back if `work` throws. When the database
 * picks it as a deadlock victim or cannot serialize it (or SQLite is busy) the whole transaction runs
 * again, up to 5 times, so `work` must not have effects outside the database. On SQLite, transactions
 * and writes of this process are queued (see queueSqliteWrite). Inside `work`, use only the
 * repositories it is given: injected ones run outside the transaction, and on SQLite would wait for
 * it to end, which never comes.
 */
export function runInTransaction<T>(dataSource: DataSource, work: (repos: TransactionRepositories) => Promise<T>): Promise<T> {
  const attempt = () =>
    dataSource.transaction((manager) =>
      work({
        narinfos: new NarInfoRepository(manager),
        narFiles: new NarFileRepository(manager),
        config: new ConfigRepository(manager),
      }),
    );
  return withRetry(() => (dialectOf(dataSource) === 'sqlite' ? queueSqliteWrite(dataSource, attempt) : attempt()));
}
