import { Logger } from '@nestjs/common';
import { Redis } from 'ioredis';
import Redlock, { ExecutionError, Lock, ResourceLockedError } from 'redlock';
import { LockConfig } from 'src/config/config';
import { Contention, DriverLease, LockBackendError, LockDriver } from './lock.driver';
import { redisOptions } from './redis.connection';
import { readerScripts, RedisLockScripts, writerScripts } from './redis.scripts';
import { ReleaseSignals } from './release.signals';

/**
 * The longest a Redis key of a held lock lives without being renewed. The lock's TTL may be far longer
 * (5m for downloads, 30m for the LRU): the key is renewed every third of its life while the holder
 * runs, so a holder that crashes or is cut off blocks the others for at most this long, not the TTL.
 */
export const REDIS_LEASE_MAX_MS = 15_000;

export interface RedisDriverOptions {
  /** A command that takes longer counts as a backend failure (a hung server must trip the breaker). */
  commandTimeoutMs?: number;
  /** Overrides REDIS_LEASE_MAX_MS. */
  leaseMaxMs?: number;
}

/**
 * Redis locks: Redlock over one ioredis client per address (a quorum when there are several), with
 * the read/write lock of redis.scripts.ts. A held lock's keys live min(ttl, REDIS_LEASE_MAX_MS) and are
 * extended every third of that while its holder runs; releases are published so waiters of every
 * instance wake at once.
 *
 * `--cache-redis-pool-size` has nothing to size here: ioredis pipelines every command over one
 * connection, so the driver opens two connections per address (commands, and pub/sub).
 */
export class RedisLockDriver implements LockDriver {
  readonly backend = 'redis';
  private readonly logger = new Logger('Locks');
  private readonly clients: Redis[];
  private readonly subscribers: Redis[];
  private readonly subscribed: Promise<unknown>[];
  private readonly waitingWriters: Redlock;
  private readonly tryingWriters: Redlock;
  private readonly readers: Redlock;
  private readonly signals = new ReleaseSignals();
  private readonly errors = new Map<Redis, string>();
  private readonly leaseMaxMs: number;

  constructor(private readonly config: LockConfig, options: RedisDriverOptions = {}) {
    const { addrs } = config.redis;
    if (addrs.length === 0) throw new Error('the redis lock backend needs --cache-redis-addrs');
    const commandTimeoutMs = options.commandTimeoutMs ?? 2000;
    this.leaseMaxMs = options.leaseMaxMs ?? REDIS_LEASE_MAX_MS;
    const channel = `${config.keyPrefix}released`;

    this.clients = addrs.map((addr) => this.track(new Redis(redisOptions(addr, config.redis, 'commands', commandTimeoutMs))));
    this.subscribers = addrs.map((addr) => {
      const subscriber = this.track(new Redis(redisOptions(addr, config.redis, 'subscriber', commandTimeoutMs)));
      subscriber.on('message', (_channel: string, key: string) => this.signals.notify(key));
      return subscriber;
    });
    for (const client of [...this.clients, ...this.subscribers]) client.connect().catch(() => undefined);
    this.subscribed = this.subscribers.map((subscriber) => subscriber.subscribe(channel).catch(() => undefined));

    // We do our own waiting (woken by releases), so Redlock makes exactly one attempt per call.
    const settings = { retryCount: 0 };
    // A waiting writer re-attempts at least every 2 × max-delay (backoff plus jitter); its mark outlives that.
    const announceTtlMs = 2 * config.retry.maxDelayMs + 1000;
    this.waitingWriters = new Redlock(this.clients, settings, replacing(writerScripts(channel, true, announceTtlMs)));
    this.tryingWriters = new Redlock(this.clients, settings, replacing(writerScripts(channel, false, announceTtlMs)));
    this.readers = new Redlock(this.clients, settings, replacing(readerScripts(channel)));
  }

  contend(key: string, ttlMs: number, shared: boolean, waiting: boolean): Contention {
    const redlock = shared ? this.readers : waiting ? this.waitingWriters : this.tryingWriters;
    const lockKey = this.config.keyPrefix + key;
    const resources = [lockKey, `${lockKey}:readers`, `${lockKey}:writer-waiting`];
    const duration = Math.max(1, Math.ceil(Math.min(ttlMs, this.leaseMaxMs)));
    return {
      attempt: async () => {
        try {
          return new RedisLease(redlock, await redlock.acquire(resources, duration), duration);
        } catch (error) {
          const failure = await classify(error);
          if (failure === 'held') return null;
          throw failure;
        }
      },
      // A writer's waiting mark expires by itself; nothing else is held while contending.
      end: async () => undefined,
    };
  }

  onRelease(key: string, listener: () => void): () => void {
    return this.signals.listen(this.config.keyPrefix + key, listener);
  }

  async ready(timeoutMs: number): Promise<void> {
    const connected = Promise.all([
      ...this.clients.map((client) => (client.status === 'ready' ? undefined : new Promise((resolve) => client.once('ready', resolve)))),
      ...this.subscribed,
    ]);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([connected, new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
  }

  async check(): Promise<void> {
    const results = await Promise.allSettled(this.clients.map((client) => client.ping()));
    const reachable = results.filter((result) => result.status === 'fulfilled').length;
    if (reachable >= quorum(this.clients.length)) return;
    const problems = results.flatMap((result, i) =>
      result.status === 'rejected' ? [`${this.config.redis.addrs[i]}: ${this.errors.get(this.clients[i]) ?? message(result.reason)}`] : [],
    );
    throw new LockBackendError(`Redis unreachable (${reachable} of ${this.clients.length} servers answer): ${problems.join('; ')}`);
  }

  async close(): Promise<void> {
    const closing = [...this.clients, ...this.subscribers].map(async (client) => {
      if (client.status === 'ready') await client.quit().catch(() => client.disconnect());
      else if (client.status !== 'end') client.disconnect();
    });
    await Promise.all(closing);
  }

  /** Keeps the last connection error of each client (for check()) and keeps ioredis from logging it raw. */
  private track(client: Redis): Redis {
    client.on('error', (error: Error) => this.errors.set(client, error.message));
    client.on('ready', () => {
      if (this.errors.delete(client)) this.logger.log({ backend: 'redis' }, 'reconnected to Redis');
    });
    return client;
  }
}

/** A Redlock lock, extended every ttl/3 until released. */
class RedisLease implements DriverLease {
  private readonly controller = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private extension: Promise<void> | undefined;
  private released = false;

  constructor(
    private readonly redlock: Redlock,
    private lock: Lock,
    private readonly ttlMs: number,
  ) {
    this.schedule(ttlMs / 3);
  }

  get lost(): AbortSignal {
    return this.controller.signal;
  }

  async release(): Promise<void> {
    this.released = true;
    clearTimeout(this.timer);
    await this.extension;
    try {
      await this.redlock.release(this.lock);
    } catch (error) {
      // The release scripts vote "for" on every server that answers, so only unreachable servers get here.
      const failure = await classify(error);
      throw failure === 'held' ? new LockBackendError('Redis refused to release the lock') : failure;
    }
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => {
      this.extension = this.extend();
    }, delayMs);
  }

  private async extend(): Promise<void> {
    try {
      this.lock = await this.redlock.extend(this.lock, this.ttlMs);
      if (!this.released) this.schedule(this.ttlMs / 3);
    } catch (error) {
      if (this.released) return;
      const failure = await classify(error);
      // A server that did not answer may answer next time; retry while the lock is still valid.
      if (failure !== 'held' && this.lock.expiration > Date.now()) {
        this.schedule(this.ttlMs / 6);
        return;
      }
      this.controller.abort(
        failure === 'held' ? new Error('the lock expired or was taken before it could be extended') : failure,
      );
    }
  }
}

/**
 * Redlock reports both "held by someone else" and "servers unreachable" as an ExecutionError; which
 * one it was is in the votes. A quorum that could not be reached because servers failed is a backend
 * error; otherwise the lock is held (or, for extend, no longer ours).
 */
async function classify(error: unknown): Promise<'held' | LockBackendError> {
  if (!(error instanceof ExecutionError)) return new LockBackendError(`Redis lock operation failed: ${message(error)}`, { cause: error });
  const last = error.attempts[error.attempts.length - 1];
  if (!last) return 'held'; // Redlock refused locally: the lock had already expired.
  const stats = await last;
  const failures = [...stats.votesAgainst.values()].filter((vote) => !(vote instanceof ResourceLockedError));
  if (stats.membershipSize - failures.length >= stats.quorumSize) return 'held';
  return new LockBackendError(`Redis unavailable: ${failures.map(message).join('; ')}`, { cause: failures[0] });
}

/** Redlock 5 (beta) silently ignores replacement scripts given as strings: only functions are applied. */
function replacing(scripts: RedisLockScripts): { [name in keyof RedisLockScripts]: () => string } {
  return {
    acquireScript: () => scripts.acquireScript,
    extendScript: () => scripts.extendScript,
    releaseScript: () => scripts.releaseScript,
  };
}

function quorum(servers: number): number {
  return Math.floor(servers / 2) + 1;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
