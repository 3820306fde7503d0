/**
 * The backends the hit and miss rows can be re-run on (NCPS_BENCH_BACKENDS): each adds flags to
 * `ncps serve` and cleans up what it made. The services are the test machine's (design.md):
 * PostgreSQL 127.0.0.1:5432 (postgres), MariaDB 127.0.0.1:3306 (root), Redis 127.0.0.1:6379
 * (NCPS_BENCH_REDIS overrides it), and s3rver, started here in a child process.
 */
import { ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { S3StorageConfig } from 'src/config/config';
import { createTestDatabase } from 'test/support/databases';
import { startS3rver } from 'test/support/s3rver';

export interface Backend {
  name: BackendName;
  flags: string[];
  cleanup(): Promise<void>;
}

export const BACKEND_NAMES = ['redis-locks', 'postgres-locks', 'postgres', 'mysql', 's3'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

/** What each runs on; the rest is the embedded defaults (SQLite, local storage, local locks). */
export const BACKEND_DESCRIPTIONS: Record<BackendName, string> = {
  // A distributed lock backend refuses SQLite (instances could not share it).
  'redis-locks': 'Redis locks, PostgreSQL database',
  'postgres-locks': 'PostgreSQL advisory locks and database',
  postgres: 'PostgreSQL database',
  mysql: 'MariaDB database',
  s3: "S3 storage (s3rver, a child of the bench on the clients' CPU)",
};

const REDIS = process.env.NCPS_BENCH_REDIS ?? '127.0.0.1:6379';
const SERVE_S3RVER = '--serve-s3rver';

async function database(dialect: 'postgres' | 'mysql'): Promise<{ flag: string; drop(): Promise<void> }> {
  const db = await createTestDatabase(dialect);
  return { flag: `--cache-database-url=${db.url}`, drop: () => db.drop() };
}

export async function prepareBackend(name: BackendName): Promise<Backend> {
  switch (name) {
    case 'redis-locks': {
      const db = await database('postgres');
      const prefix = `ncps-bench-${randomBytes(4).toString('hex')}:`;
      return {
        name,
        flags: [db.flag, '--cache-lock-backend=redis', `--cache-redis-addrs=${REDIS}`, `--cache-lock-redis-key-prefix=${prefix}`],
        cleanup: () => db.drop(),
      };
    }
    case 'postgres-locks': {
      const db = await database('postgres');
      return { name, flags: [db.flag, '--cache-lock-backend=postgres'], cleanup: () => db.drop() };
    }
    case 'postgres': {
      const db = await database('postgres');
      return { name, flags: [db.flag], cleanup: () => db.drop() };
    }
    case 'mysql': {
      const db = await database('mysql');
      return { name, flags: [db.flag], cleanup: () => db.drop() };
    }
    case 's3': {
      const { child, config } = await startS3rverProcess();
      return {
        name,
        flags: [
          `--cache-storage-s3-bucket=${config.bucket}`,
          `--cache-storage-s3-endpoint=${config.endpoint}`,
          `--cache-storage-s3-region=${config.region}`,
          `--cache-storage-s3-access-key-id=${config.accessKeyId}`,
          `--cache-storage-s3-secret-access-key=${config.secretAccessKey}`,
          '--cache-storage-s3-force-path-style=true',
        ],
        cleanup: async () => {
          const exited = once(child, 'exit');
          child.disconnect();
          await exited;
        },
      };
    }
    default: {
      const never: never = name;
      throw new Error(`unknown backend ${String(never)}`);
    }
  }
}

/**
 * s3rver in a child process (of this file), so that its work is not the benchmark's own. It inherits
 * the benchmark's CPU, the load generator's: only ncps's own CPU time is counted.
 */
function startS3rverProcess(): Promise<{ child: ChildProcess; config: S3StorageConfig }> {
  const child = fork(__filename, [SERVE_S3RVER], { stdio: 'inherit' });
  return new Promise((resolve, reject) => {
    child.once('message', (config) => resolve({ child, config: config as S3StorageConfig }));
    child.once('exit', (code) => reject(new Error(`s3rver process exited with ${code}`)));
  });
}

/** Child: serve a fresh bucket until the parent goes away. */
async function serveS3rver(): Promise<void> {
  const server = await startS3rver();
  process.send?.(server.config);
  process.once('disconnect', () => void server.stop().then(() => process.exit(0)));
}

if (require.main === module && process.argv.includes(SERVE_S3RVER)) void serveS3rver();
