import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { DataSource, DataSourceOptions } from 'typeorm';
import { DatabaseConfig } from 'src/config/config';
import { SQLITE_MIGRATIONS } from '../../migrations/sqlite';
import { ENTITIES } from './entities';

/** Builds (does not connect) the TypeORM data source for the configured database. */
export function createDataSource(config: DatabaseConfig): DataSource {
  return new DataSource(dataSourceOptions(config));
}

export function dataSourceOptions(config: DatabaseConfig): DataSourceOptions {
  const common = { entities: ENTITIES, synchronize: false, migrationsRun: false, logging: false } as const;
  switch (config.dialect) {
    case 'sqlite': {
      const path = sqlitePath(config.url);
      if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
      return {
        ...common,
        type: 'better-sqlite3',
        database: path,
        migrations: SQLITE_MIGRATIONS,
        // WAL lets readers run beside the single writer; busy_timeout makes a second process wait
        // for the write lock instead of failing with SQLITE_BUSY.
        enableWAL: path !== ':memory:',
        prepareDatabase: (db: { pragma(s: string): unknown }) => {
          db.pragma('busy_timeout = 10000');
          db.pragma('foreign_keys = ON');
        },
      };
    }
    case 'postgres':
    case 'mysql':
      throw new Error(`database dialect ${config.dialect} is not wired yet`);
    default: {
      const never: never = config.dialect;
      throw new Error(`unknown database dialect ${String(never)}`);
    }
  }
}

/** `sqlite:PATH`, `sqlite3:PATH`, `sqlite:///abs/path` or `sqlite://rel` → a filesystem path. */
export function sqlitePath(url: string): string {
  const rest = url.replace(/^sqlite3?:/i, '').replace(/^\/\/(?=\/)/, '').replace(/^\/\//, '');
  const path = rest.split('?')[0];
  if (path === '' ) throw new Error('--cache-database-url: sqlite URL has no path');
  return path === ':memory:' ? path : resolve(path);
}
