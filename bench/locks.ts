/**
 * Lock acquire+release latency of each backend on loopback, uncontended and under contention, next
 * to the seed's figures. Run by hand: `node dist/bench/locks.js` after `npm run build`.
 * Needs Redis (NCPS_BENCH_REDIS, default 127.0.0.1:6379) and PostgreSQL (NCPS_BENCH_POSTGRES, a
 * server URL whose user may create databases; default postgresql://postgres@127.0.0.1:5432): it
 * creates and drops a database of its own and uses a key prefix of its own.
 */
import { Logger } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { Client } from 'pg';
import { Registry } from 'prom-client';
import { LockBackend, NcpsConfig } from 'src/config/config';
import { createLockPort } from 'src/locking/lock.factory';
import { LockPort } from 'src/locking/lock.port';

const REDIS = process.env.NCPS_BENCH_REDIS ?? '127.0.0.1:6379';
const POSTGRES = process.env.NCPS_BENCH_POSTGRES ?? 'postgresql://postgres@127.0.0.1:5432';
const ITERATIONS = 2000;
/** Contention: 8 workers, spread over 4 instances (as 4 ncps processes would be), on 4 keys. */
const WORKERS = 8;
const INSTANCES = 4;
const KEYS = 4;
const SEED: Record<LockBackend, string> = { local: '—', redis: '0.5–2 ms', postgres: '1–5 ms' };

interface Row {
  backend: LockBackend;
  scenario: string;
  p50: number;
  p99: number;
  perSecond: number;
}

function config(backend: LockBackend, keyPrefix: string, databaseUrl: string): Pick<NcpsConfig, 'lock' | 'database'> {
  return {
    database: { url: databaseUrl, dialect: backend === 'postgres' ? 'postgres' : 'sqlite', poolMaxOpen: 5, poolMaxIdle: 5 },
    lock: {
      backend,
      allowDegradedMode: false,
      downloadTtlMs: 300_000,
      lruTtlMs: 1_800_000,
      retry: { maxAttempts: 3, initialDelayMs: 100, maxDelayMs: 2000, jitter: true },
      keyPrefix,
      redis: { addrs: [REDIS], db: 0, useTls: false, poolSize: 10 },
    },
  };
}

/** Times `ops` closures run by `workers` loops; returns per-op latencies (ms) and the wall time (ms). */
async function measure(
  workers: number,
  ops: number,
  op: (worker: number, i: number) => Promise<unknown>,
): Promise<{ latencies: number[]; wallMs: number }> {
  const latencies: number[] = [];
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: workers }, async (_, worker) => {
      for (let i = 0; i < ops / workers; i++) {
        const t = process.hrtime.bigint();
        await op(worker, i);
        latencies.push(Number(process.hrtime.bigint() - t) / 1e6);
      }
    }),
  );
  return { latencies, wallMs: Number(process.hrtime.bigint() - started) / 1e6 };
}

function row(backend: LockBackend, scenario: string, { latencies, wallMs }: { latencies: number[]; wallMs: number }): Row {
  const sorted = [...latencies].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return { backend, scenario, p50: at(0.5), p99: at(0.99), perSecond: (latencies.length / wallMs) * 1000 };
}

async function bench(backend: LockBackend, databaseUrl: string): Promise<Row[]> {
  const keyPrefix = `ncps:bench:${randomBytes(4).toString('hex')}:`;
  const open = (): Promise<LockPort> => createLockPort(config(backend, keyPrefix, databaseUrl), new Registry());
  // Local locks live in one process: its "instances" are one provider.
  const first = await open();
  const instances =
    backend === 'local'
      ? Array<LockPort>(INSTANCES).fill(first)
      : [first, ...(await Promise.all(Array.from({ length: INSTANCES - 1 }, open)))];
  const empty = async (): Promise<void> => undefined;
  try {
    await measure(1, 200, (_, i) => first.withLock(`download:nar:warm${i}`, 30_000, empty));
    const uncontended = await measure(1, ITERATIONS, (_, i) => first.withLock(`download:nar:u${i % 100}`, 30_000, empty));
    const reads = await measure(1, ITERATIONS, (_, i) => first.withReadLock(`cache:nar:r${i % 100}`, 30_000, empty));
    const contended = await measure(WORKERS, ITERATIONS, (worker, i) =>
      instances[worker % INSTANCES].withLock(`download:nar:c${(worker + i) % KEYS}`, 30_000, empty),
    );
    return [
      row(backend, 'withLock, uncontended', uncontended),
      row(backend, 'withReadLock, uncontended', reads),
      row(backend, `withLock, ${WORKERS} workers / ${INSTANCES} instances / ${KEYS} keys`, contended),
    ];
  } finally {
    await Promise.all([...new Set(instances)].map((port) => port.close()));
    if (backend === 'redis') {
      const redis = new Redis(Number(REDIS.split(':')[1]), REDIS.split(':')[0]);
      const keys = await redis.keys(`${keyPrefix}*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
    }
  }
}

async function withDatabase<T>(fn: (url: string) => Promise<T>): Promise<T> {
  const name = `ncps_lock_bench_${randomBytes(4).toString('hex')}`;
  const admin = async (sql: string): Promise<void> => {
    const client = new Client({ connectionString: `${POSTGRES}/postgres` });
    await client.connect();
    await client.query(sql).finally(() => client.end());
  };
  await admin(`CREATE DATABASE ${name}`);
  try {
    return await fn(`${POSTGRES}/${name}`);
  } finally {
    await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  }
}

async function main(): Promise<void> {
  Logger.overrideLogger(['error']);
  const rows = await withDatabase(async (url) => [
    ...(await bench('local', url)),
    ...(await bench('redis', url)),
    ...(await bench('postgres', url)),
  ]);
  const ms = (value: number): string => `${value.toFixed(3)} ms`;
  console.log(`Lock acquire+release latency, ${ITERATIONS} operations per scenario (Node ${process.version}, loopback)\n`);
  console.log('| backend | scenario | p50 | p99 | ops/s | seed (acquisition) |');
  console.log('|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(`| ${r.backend} | ${r.scenario} | ${ms(r.p50)} | ${ms(r.p99)} | ${Math.round(r.perSecond)} | ${SEED[r.backend]} |`);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
