import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DataSource, DataSourceOptions } from 'typeorm';
import { DatabaseConfig } from 'src/config/config';
import { ConfigError } from 'src/config/option';
import { MYSQL_MIGRATIONS } from '../../migrations/mysql';
import { POSTGRES_MIGRATIONS } from '../../migrations/postgres';
import { SQLITE_MIGRATIONS } from '../../migrations/sqlite';
import { ENTITIES } from './entities';
import { parseMysqlUrl } from './url/mysql-url';
import { postgresConnectionOptions } from './url/postgres-url';
import { redactUrl } from './url/redact-url';
import { sqlitePath } from './url/sqlite-url';
import { tlsOptions } from './url/tls-options';

/**
 * How long a PostgreSQL connection beyond the `poolMaxIdle` we keep may stay idle before it is closed.
 * Go's database/sql closes surplus idle connections at once; a few seconds spares the reconnect
 * churn of bursts without holding server slots for long.
 */
const SURPLUS_IDLE_MS = 10_000;

/** Builds (does not connect) the TypeORM data source for the configured database. */
export function createDataSource(config: DatabaseConfig): DataSource {
  return new DataSource(dataSourceOptions(config));
}

/**
 * TypeORM options for the configured database. A malformed URL is a ConfigError whose message
 * shows the URL with its password masked.
 */
export function dataSourceOptions(config: DatabaseConfig): DataSourceOptions {
  try {
    return optionsFor(config);
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(`database URL ${redactUrl(config.url)}: ${(e as Error).message}`);
  }
}

function optionsFor(config: DatabaseConfig): DataSourceOptions {
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
        // WAL lets readers run beside the single writer; the busy timeout makes a second process
        // wait for the write lock instead of failing with SQLITE_BUSY.
        enableWAL: path !== ':memory:',
        timeout: 10_000,
      };
    }
    case 'postgres': {
      // The same options as the lock sessions' (postgresConnectionOptions), in TypeORM's names.
      const pg = postgresConnectionOptions(config.url);
      return {
        ...common,
        type: 'postgres',
        host: pg.host,
        port: pg.port,
        username: pg.user,
        password: pg.password,
        database: pg.database,
        ssl: pg.ssl,
        applicationName: pg.application_name ?? 'ncps',
        connectTimeoutMS: pg.connectionTimeoutMillis,
        migrations: POSTGRES_MIGRATIONS,
        // pg-pool has no "max idle": it closes idle clients above `min` after idleTimeoutMillis. So
        // up to poolMaxIdle connections stay open while idle; the surplus closes after a short wait.
        extra: {
          max: config.poolMaxOpen,
          min: Math.min(config.poolMaxIdle, config.poolMaxOpen),
          idleTimeoutMillis: SURPLUS_IDLE_MS,
        },
      };
    }
    case 'mysql': {
      const url = parseMysqlUrl(config.url);
      const ssl = tlsOptions(url.tls);
      return {
        ...common,
        type: 'mysql',
        connectorPackage: 'mysql2',
        host: url.host,
        port: url.port,
        socketPath: url.socketPath,
        username: url.user,
        password: url.password,
        database: url.database,
        ssl: ssl || undefined,
        connectTimeout: url.connectTimeoutMs,
        charset: 'utf8mb4',
        // BIGINT and SUM() arrive as exact strings; the entity transformers turn them into numbers.
        supportBigNumbers: true,
        bigNumberStrings: true,
        migrations: MYSQL_MIGRATIONS,
        poolSize: config.poolMaxOpen,
        // mysql2 closes idle connections above maxIdle within a second (and, by its default, any
        // connection idle for 60 s).
        extra: { maxIdle: Math.min(config.poolMaxIdle, config.poolMaxOpen) },
      };
    }
    default: {
      const never: never = config.dialect;
      throw new Error(`unknown database dialect ${String(never)}`);
    }
  }
}
