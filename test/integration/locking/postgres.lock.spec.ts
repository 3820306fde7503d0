import { Logger } from '@nestjs/common';
import { Pool } from 'pg';
import { Registry } from 'prom-client';
import { ConfigError } from 'src/config/option';
import { LockPort } from 'src/locking';
import { RetryPolicy } from 'src/locking/lock.backoff';
import { createLockPort } from 'src/locking/lock.factory';
import { advisoryKey } from 'src/locking/providers/postgres.advisory-key';
import { PostgresLockDriver } from 'src/locking/providers/postgres.driver';
import { createTestDatabase, TestDatabase } from 'test/support/databases';
import { admin, lockTestConfig, testKeyPrefix } from 'test/support/lock-services';
import { until } from 'test/support/wait';
import { describeLockConformance, LockFixture } from './lock.conformance';

let database: TestDatabase;

beforeAll(async () => {
  Logger.overrideLogger(false);
  database = await createTestDatabase('postgres');
});
afterAll(() => database.drop());

/** Terminates the server session holding the advisory lock of `key` (a crash, seen from PostgreSQL). */
async function terminateHolderOf(keyPrefix: string, key: string): Promise<number> {
  const id = BigInt.asUintN(64, BigInt(advisoryKey(keyPrefix, key)));
  const { rowCount } = await admin((client) =>
    client.query(
      `SELECT pg_terminate_backend(pid) FROM pg_locks
        WHERE locktype = 'advisory' AND classid = $1 AND objid = $2 AND objsubid = 1
          AND database = (SELECT oid FROM pg_database WHERE datname = $3)`,
      [(id >> 32n).toString(), (id & 0xffffffffn).toString(), database.name],
    ),
  );
  return rowCount ?? 0;
}

function postgresFixture(): LockFixture {
  const keyPrefix = testKeyPrefix();
  const opened: LockPort[] = [];
  const open = async (retry?: RetryPolicy): Promise<LockPort> => {
    const port = await createLockPort(lockTestConfig('postgres', { keyPrefix, retry, databaseUrl: database.url }), new Registry());
    opened.push(port);
    return port;
  };
  return {
    instances: (count, retry) => Promise.all(Array.from({ length: count }, () => open(retry))),
    // The server ends the holder's session: its locks go with it at once.
    holdAndVanish: async (key) => {
      const crashing = await open();
      await new Promise<void>((entered) => {
        void crashing.withLock(key, 60_000, () => {
          entered();
          return new Promise(() => undefined);
        });
      });
      return {
        vanish: async () => expect(await terminateHolderOf(keyPrefix, key)).toBe(1),
        freedWithinMs: [0, 1500],
      };
    },
    closeAll: () => Promise.all(opened.map((port) => port.close())).then(() => undefined),
  };
}

describeLockConformance('postgres', postgresFixture);

describe('postgres provider', () => {
  let keyPrefix: string;
  let registry: Registry;
  let sut: LockPort;

  beforeEach(async () => {
    keyPrefix = testKeyPrefix();
    registry = new Registry();
    sut = await createLockPort(lockTestConfig('postgres', { keyPrefix, databaseUrl: database.url }), registry);
  });
  afterEach(() => sut.close());

  const lockSessions = (): Promise<number> =>
    admin(async (client) => {
      const { rows } = await client.query<{ n: string }>(
        `SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'ncps-locks' AND datname = $1`,
        [database.name],
      );
      return Number(rows[0].n);
    });

  it('holds 500 locks at once on two sessions, while a query pool of 5 keeps answering promptly', async () => {
    const pool = new Pool({ connectionString: database.url, max: 5 });
    try {
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      let held = 0;
      let allHeld!: () => void;
      const everyoneIn = new Promise<void>((resolve) => (allHeld = resolve));
      const holders = Array.from({ length: 500 }, (_, i) =>
        sut.withLock(`download:nar:pool${i}`, 30_000, async () => {
          if (++held === 500) allHeld();
          await released;
        }),
      );
      await everyoneIn;

      const { rows } = await pool.query<{ n: string }>(
        `SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = $1)`,
        [database.name],
      );
      expect(Number(rows[0].n)).toBe(500);
      expect(await lockSessions()).toBe(2);

      // The 500 locks sit on the two lock sessions, so the pool gets its connections: the queries all
      // answer (a starved pool would hang them until the test's timeout), without any timing bound.
      const answers = await Promise.all(Array.from({ length: 50 }, () => pool.query<{ one: number }>('SELECT 1 AS one')));
      expect(answers.map((answer) => answer.rows[0].one)).toEqual(Array(50).fill(1));
      expect(pool.totalCount).toBeLessThanOrEqual(5);
      expect(await lockSessions()).toBe(2);

      release();
      await Promise.all(holders);
    } finally {
      await pool.end();
    }
  });

  it('aborts the leases of a lost session, and re-establishes it', async () => {
    const reason = await sut.withLock('download:nar:s', 60_000, async ({ signal }) => {
      expect(await terminateHolderOf(keyPrefix, 'download:nar:s')).toBe(1);
      if (!signal.aborted) await new Promise((resolve) => signal.addEventListener('abort', resolve));
      return signal.reason as unknown;
    });
    expect(reason).toMatchObject({ name: 'LockUnavailableError', reason: 'lost' });
    expect(await registry.metrics()).toContain('ncps_lock_failures_total{type="download",reason="lost",mode="distributed"} 1');

    // The session comes back on its own, and locks work again (the wait absorbs the reconnection).
    await expect(sut.withLock('download:nar:s', 10_000, async () => 'again')).resolves.toBe('again');
    // The killed session leaves pg_stat_activity and the new one appears on their own time: wait for it.
    await until('the two lock sessions are back', async () => (await lockSessions()) === 2);
    expect(await lockSessions()).toBe(2);
    await expect(sut.check()).resolves.toBeUndefined();
  });

  it('refuses to start on a database that is not PostgreSQL', async () => {
    const config = lockTestConfig('postgres', { keyPrefix });
    await expect(createLockPort(config, new Registry())).rejects.toThrow(ConfigError);
    await expect(createLockPort(config, new Registry())).rejects.toThrow('needs a PostgreSQL database');
  });
});

describe('postgres provider with an unreachable server', () => {
  const unreachable = 'postgresql://postgres@127.0.0.1:1/ncps';
  const retry = { maxAttempts: 1, initialDelayMs: 10, maxDelayMs: 50, jitter: false };
  const open = (allowDegradedMode: boolean): Promise<LockPort> =>
    createLockPort(
      lockTestConfig('postgres', { keyPrefix: testKeyPrefix(), databaseUrl: unreachable, retry, allowDegradedMode }),
      new Registry(),
      { readyTimeoutMs: 200, breaker: { failureThreshold: 2, cooldownMs: 60_000 } },
    );

  it('fails fast once the breaker is open, when degraded mode is not allowed', async () => {
    const sut = await open(false);
    try {
      await expect(sut.check()).rejects.toThrow('PostgreSQL unreachable');
      await expect(sut.withLock('lru', 5000, async () => undefined)).rejects.toMatchObject({ reason: 'backend_error' });
      // Failing fast: the open breaker refuses before the backend is asked at all.
      const contend = jest.spyOn(PostgresLockDriver.prototype, 'contend');
      await expect(sut.withLock('lru', 5000, async () => undefined)).rejects.toMatchObject({ reason: 'circuit_breaker' });
      expect(contend).not.toHaveBeenCalled();
      contend.mockRestore();
      expect(sut.status()).toMatchObject({ backend: 'postgres', mode: 'distributed', reachable: false });
    } finally {
      await sut.close();
    }
  });

  it('serves with local locks in degraded mode', async () => {
    const sut = await open(true);
    try {
      await expect(sut.withLock('lru', 5000, async () => 'served')).resolves.toBe('served');
      await expect(sut.withLock('lru', 5000, async () => 'served')).resolves.toBe('served');
      expect(sut.status()).toMatchObject({ backend: 'postgres', mode: 'degraded', reachable: false });
    } finally {
      await sut.close();
    }
  });
});
