import { Logger } from '@nestjs/common';
import { Client } from 'pg';
import { Registry } from 'prom-client';
import { DataSource } from 'typeorm';
import { applyMigrations, ConfigRepository, createDataSource } from 'src/database';
import { LockPort } from 'src/locking';
import { createLockPort } from 'src/locking/lock.factory';
import { lockTestConfig, testKeyPrefix } from 'test/support/lock-services';
import { canStartPostgres, startTlsPostgres, TlsPostgres } from 'test/support/postgres-tls';

/**
 * The query pool and the lock sessions read the PostgreSQL URL the same way, so against a
 * server with a certificate from a private CA they succeed or fail together, for each sslmode.
 */
const PASSWORD = 's3cret-pw';

(canStartPostgres() ? describe : describe.skip)('PostgreSQL over TLS: queries and locks agree', () => {
  let server: TlsPostgres;
  const opened: Array<{ close(): Promise<unknown> }> = [];

  beforeAll(async () => {
    Logger.overrideLogger(false);
    server = await startTlsPostgres();
  }, 30_000);
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((o) => o.close()));
  });
  afterAll(() => server?.stop());

  /** The server is on trust authentication: the password is there to be kept out of errors. */
  const url = (host: string, query: string) => `postgres://postgres:${PASSWORD}@${host}:${server.port}/postgres?${query}`;

  /** Which connections of an application use TLS, seen from the server. */
  async function tlsOf(applicationName: string): Promise<boolean[]> {
    const client = new Client({ connectionString: server.adminUrl });
    await client.connect();
    try {
      const { rows } = await client.query<{ ssl: boolean }>(
        'SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = $1',
        [applicationName],
      );
      return rows.map((row) => row.ssl);
    } finally {
      await client.end();
    }
  }

  /** A migrated data source and a repository round trip; returns whether its session uses TLS. */
  async function queries(databaseUrl: string): Promise<boolean> {
    const ds = createDataSource({ url: databaseUrl, dialect: 'postgres', poolMaxOpen: 2, poolMaxIdle: 1 });
    await ds.initialize();
    opened.push({ close: () => ds.destroy() });
    await applyMigrations(ds);
    const config = new ConfigRepository(ds);
    await config.set('tls-probe', databaseUrl.slice(databaseUrl.indexOf('?')));
    expect(await config.get('tls-probe')).toBe(databaseUrl.slice(databaseUrl.indexOf('?')));
    return sessionTls(ds);
  }

  async function sessionTls(ds: DataSource): Promise<boolean> {
    const [{ ssl }] = await ds.query<Array<{ ssl: boolean }>>('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
    return ssl;
  }

  async function lockPort(databaseUrl: string, readyTimeoutMs = 5000): Promise<LockPort> {
    const config = lockTestConfig('postgres', { keyPrefix: testKeyPrefix(), databaseUrl });
    const port = await createLockPort(config, new Registry(), { readyTimeoutMs, probeIntervalMs: 0 });
    opened.push(port);
    return port;
  }

  /** Takes an advisory lock; returns whether the lock sessions use TLS, looked at while it is held. */
  async function locks(databaseUrl: string): Promise<boolean[]> {
    const port = await lockPort(databaseUrl);
    return port.withLock('tls-key', 10_000, () => tlsOf('ncps-locks'));
  }

  /** The error a connection fails with, queries and locks: the lock sessions' once they have tried. */
  async function failures(databaseUrl: string): Promise<{ queries: Error; locks: Error }> {
    const ds = createDataSource({ url: databaseUrl, dialect: 'postgres', poolMaxOpen: 1, poolMaxIdle: 0 });
    const queryError = await ds.initialize().then(
      async () => {
        await ds.destroy();
        throw new Error('queries connected, but should not have');
      },
      (error: Error) => error,
    );
    // Start-up goes on without the lock sessions (the breaker takes over); their failure shows in check().
    const port = await lockPort(databaseUrl, 100);
    return { queries: queryError, locks: await explainedCheckFailure(port) };
  }

  /** check()'s error once it names the cause: until the first connection attempt has failed, it cannot. */
  async function explainedCheckFailure(port: LockPort): Promise<Error> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const error = await port.check().then(
        () => {
          throw new Error('locks connected, but should not have');
        },
        (e: Error) => e,
      );
      if (/certificate|unable to/.test(error.message) || Date.now() > deadline) return error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  it('sslmode=require: encrypts without checking the private CA, for queries and locks alike', async () => {
    expect(await queries(url('127.0.0.1', 'sslmode=require'))).toBe(true);
    expect(await locks(url('127.0.0.1', 'sslmode=require'))).toEqual([true, true]);
  });

  it('sslmode=verify-full with sslrootcert: both trust the CA and check the host name', async () => {
    const verified = url('localhost', `sslmode=verify-full&sslrootcert=${server.caFile}`);

    expect(await queries(verified)).toBe(true);
    expect(await locks(verified)).toEqual([true, true]);
  });

  it('sslmode=verify-full without the CA: both refuse the server, saying why, without the password', async () => {
    const { queries: queryError, locks: lockError } = await failures(url('localhost', 'sslmode=verify-full'));

    for (const error of [queryError, lockError]) {
      expect(error.message).toMatch(/self[- ]signed certificate|unable to (get|verify)/);
      expect(JSON.stringify({ message: error.message, stack: error.stack })).not.toContain(PASSWORD);
    }
  });

  it('sslmode=disable: both connect in plain text to a server that also offers TLS', async () => {
    expect(await queries(url('127.0.0.1', 'sslmode=disable'))).toBe(false);
    expect(await locks(url('127.0.0.1', 'sslmode=disable'))).toEqual([false, false]);
  });
});
