import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { Client } from 'pg';
import { LockBackend, NcpsConfig } from 'src/config/config';
import { RetryPolicy } from 'src/locking/lock.backoff';

/** The machine's shared services (design.md): the lock tests never skip when one is missing, they fail. */
export const SHARED_REDIS = '127.0.0.1:6379';
const PG_SERVER = 'postgresql://postgres@127.0.0.1:5432';

export type LockTestConfig = Pick<NcpsConfig, 'lock' | 'database'>;

const uniqueSuffix = (): string => randomBytes(4).toString('hex');

/** A key prefix of its own for each run, so runs in parallel never see each other's locks. */
export const testKeyPrefix = (): string => `ncps:locktest:${uniqueSuffix()}:`;

/** Polling that keeps tests quick; the wake-up tests set their own, deliberately slow, polling. */
export const FAST_RETRY: RetryPolicy = { maxAttempts: 3, initialDelayMs: 20, maxDelayMs: 200, jitter: true };

export function lockTestConfig(
  backend: LockBackend,
  options: {
    keyPrefix: string;
    databaseUrl?: string;
    redisAddrs?: string[];
    retry?: RetryPolicy;
    allowDegradedMode?: boolean;
    redis?: Partial<NcpsConfig['lock']['redis']>;
  },
): LockTestConfig {
  return {
    database: {
      url: options.databaseUrl ?? 'sqlite::memory:',
      dialect: options.databaseUrl ? 'postgres' : 'sqlite',
      poolMaxOpen: 5,
      poolMaxIdle: 5,
    },
    lock: {
      backend,
      allowDegradedMode: options.allowDegradedMode ?? false,
      downloadTtlMs: 300_000,
      lruTtlMs: 1_800_000,
      retry: options.retry ?? FAST_RETRY,
      keyPrefix: options.keyPrefix,
      redis: { addrs: options.redisAddrs ?? [SHARED_REDIS], db: 0, useTls: false, poolSize: 10, ...options.redis },
    },
  };
}

/**
 * Runs `fn` with a client on the PostgreSQL server as postgres (to look at pg_locks and sessions). A throwaway
 * database for a lock test comes from createTestDatabase('postgres') in databases.ts: advisory locks are per
 * database, so runs stay apart.
 */
export async function admin<T>(fn: (client: Client) => Promise<T>, database = 'postgres'): Promise<T> {
  const client = new Client({ connectionString: `${PG_SERVER}/${database}` });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Deletes every key under `prefix` on the shared Redis. */
export async function deleteRedisKeys(prefix: string): Promise<void> {
  const redis = new Redis(6379, '127.0.0.1');
  try {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
  } finally {
    await redis.quit();
  }
}

export { sleep } from './wait';
