import { Logger } from '@nestjs/common';
import { DatabaseConfig, LockConfig } from 'src/config/config';
import { ConfigError } from 'src/config/option';
import { postgresConnectionOptions } from 'src/database';
import { advisoryKey, sessionIndex } from './postgres.advisory-key';
import { LockSession } from './postgres.session';
import { Contention, DriverLease, LockBackendError, LockDriver } from './lock.driver';
import { ReleaseSignals } from './release.signals';

export interface PostgresDriverOptions {
  /** Dedicated lock connections of this instance; every lock is multiplexed over them. */
  sessions?: number;
  queryTimeoutMs?: number;
  heartbeatMs?: number;
}

const CHANNEL = 'ncps_lock_released';
/** Suffix of the key a waiting writer holds so that new readers hold back (writers are not starved). */
const WRITER_WAITING = '#writer-waiting';

// $1 = the lock's id, $2 = its writer-waiting id. CASE fixes the evaluation order PostgreSQL otherwise leaves open.
const TRY_WRITE = 'SELECT pg_try_advisory_lock($1::bigint) AS ok';
const TRY_WRITE_OR_WAIT = `SELECT CASE WHEN pg_try_advisory_lock($1::bigint) THEN 'locked'
  WHEN pg_try_advisory_lock($2::bigint) THEN 'waiting' ELSE 'busy' END AS outcome`;
const TRY_WRITE_WAITING = `SELECT CASE WHEN pg_try_advisory_lock($1::bigint)
  THEN pg_advisory_unlock($2::bigint) IS NOT NULL ELSE false END AS ok`;
const TRY_READ = `SELECT CASE WHEN pg_try_advisory_lock_shared($2::bigint)
  THEN CASE WHEN pg_advisory_unlock_shared($2::bigint) THEN pg_try_advisory_lock_shared($1::bigint) ELSE false END
  ELSE false END AS ok`;
// $1 = id to unlock, $2 = channel, $3 = the lock's id, announced to the waiters of every instance.
const UNLOCK_WRITE = 'SELECT pg_advisory_unlock($1::bigint) AS ok, pg_notify($2, $3)';
const UNLOCK_READ = 'SELECT pg_advisory_unlock_shared($1::bigint) AS ok, pg_notify($2, $3)';

/**
 * PostgreSQL session-level advisory locks on keys hashed to int64, held on a small fixed set of
 * dedicated lock sessions (2 by default) — never on the query pool, so holding a thousand locks costs
 * no more connections than holding one. Session locks are reentrant per session, so two holders of
 * this process must never share a key through one session: DistributedLock queues them in front.
 * Releases NOTIFY the waiters of every instance; a holder that vanishes (process killed, connection
 * gone) loses its locks at once, because the server ends its session.
 */
export class PostgresLockDriver implements LockDriver {
  readonly backend = 'postgres';
  private readonly logger = new Logger('Locks');
  private readonly sessions: LockSession[];
  private readonly signals = new ReleaseSignals();

  constructor(
    private readonly lock: LockConfig,
    database: DatabaseConfig,
    options: PostgresDriverOptions = {},
  ) {
    if (database.dialect !== 'postgres') {
      throw new ConfigError(`the postgres lock backend needs a PostgreSQL database; --cache-database-url is ${database.dialect}`);
    }
    // Parsed as the query pool parses it, so both connect alike (host, credentials, TLS checks).
    const connection = postgresConnectionOptions(database.url);
    this.sessions = Array.from({ length: options.sessions ?? 2 }, (_, index) => {
      return new LockSession({
        connection,
        channel: CHANNEL,
        queryTimeoutMs: options.queryTimeoutMs ?? 5000,
        heartbeatMs: options.heartbeatMs ?? 5000,
        reconnect: lock.retry,
        onNotification: (id) => this.signals.notify(id),
        onLost: (error) =>
          this.logger.warn({ backend: 'postgres', session: index, error: error.message }, 'PostgreSQL lock session lost; re-establishing'),
        onRestored: () => this.logger.log({ backend: 'postgres', session: index }, 'PostgreSQL lock session re-established'),
      });
    });
  }

  contend(key: string, _ttlMs: number, shared: boolean, waiting: boolean): Contention {
    const id = advisoryKey(this.lock.keyPrefix, key);
    const writerWaiting = advisoryKey(this.lock.keyPrefix, key + WRITER_WAITING);
    const session = this.sessions[sessionIndex(id, this.sessions.length)];
    // The connection on which this writer holds its writer-waiting lock, if it does.
    let waitingOn: number | undefined;
    const holdsWaiting = (): boolean => waitingOn === session.generation;

    const attemptWrite = async (): Promise<boolean> => {
      if (!waiting) return (await session.query<{ ok: boolean }>(TRY_WRITE, [id]))[0].ok;
      if (holdsWaiting()) {
        const ok = (await session.query<{ ok: boolean }>(TRY_WRITE_WAITING, [id, writerWaiting]))[0].ok;
        if (ok) waitingOn = undefined;
        return ok;
      }
      const generation = session.generation;
      const [{ outcome }] = await session.query<{ outcome: 'locked' | 'waiting' | 'busy' }>(TRY_WRITE_OR_WAIT, [id, writerWaiting]);
      if (outcome === 'waiting') waitingOn = generation;
      return outcome === 'locked';
    };

    return {
      attempt: async () => {
        const generation = session.generation;
        const ok = shared ? (await session.query<{ ok: boolean }>(TRY_READ, [id, writerWaiting]))[0].ok : await attemptWrite();
        if (!ok) return null;
        const controller = session.register(generation);
        // The session died right after granting it: the lock is already gone with it.
        if (controller.signal.aborted) throw controller.signal.reason;
        const lease: DriverLease = {
          lost: controller.signal,
          release: () => session.release(controller, generation, shared ? UNLOCK_READ : UNLOCK_WRITE, [id, CHANNEL, id]),
        };
        return lease;
      },
      end: async () => {
        if (!holdsWaiting()) return;
        waitingOn = undefined;
        // Readers held back by this writer may go now.
        await session.query(UNLOCK_WRITE, [writerWaiting, CHANNEL, id]).catch(() => undefined);
      },
    };
  }

  onRelease(key: string, listener: () => void): () => void {
    return this.signals.listen(advisoryKey(this.lock.keyPrefix, key), listener);
  }

  async ready(timeoutMs: number): Promise<void> {
    await Promise.all(this.sessions.map((session) => session.waitConnected(timeoutMs)));
  }

  async check(): Promise<void> {
    const results = await Promise.allSettled(this.sessions.map((session) => session.query('SELECT 1')));
    const failed = results.flatMap((result) => (result.status === 'rejected' ? [result.reason as Error] : []));
    if (failed.length > 0) {
      throw new LockBackendError(
        `PostgreSQL unreachable (${failed.length} of ${this.sessions.length} lock sessions down): ${failed[0].message}`,
      );
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.sessions.map((session) => session.close()));
  }
}
