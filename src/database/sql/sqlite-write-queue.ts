import { DataSource } from 'typeorm';

const tails = new WeakMap<DataSource, Promise<unknown>>();

/**
 * Runs `work` after every write queued before it on this SQLite data source. TypeORM's better-sqlite3
 * driver shares one connection among all query runners, so while a transaction awaits, any other
 * statement on the data source runs inside it: a concurrent BEGIN fails ("cannot start a transaction
 * within a transaction") and a concurrent write would be undone by the transaction's rollback.
 * Queueing transactions and writes in the process avoids both; other processes are kept out by
 * SQLite's own file lock.
 */
export function queueSqliteWrite<T>(dataSource: DataSource, work: () => Promise<T>): Promise<T> {
  const previous = tails.get(dataSource) ?? Promise.resolve();
  const run = previous.then(work, work);
  // The next write waits for this one to settle, whether it succeeds or fails.
  tails.set(
    dataSource,
    run.catch(() => undefined),
  );
  return run;
}
