import { Logger } from '@nestjs/common';
import { ConnectionOptions } from 'node:tls';
import { Cluster, Redis, ReplyError } from 'ioredis';
import Redlock, { ExecutionError, Lock, ResourceLockedError } from 'redlock';
import { LockConfig } from 'src/config/config';
import { Contention, DriverLease, LockBackendError, LockDriver } from './lock.driver';
import { clusterOptions, parseRedisAddress, redisOptions, redisTls } from './redis.connection';
import { RedisKeyLayout, redisKeyLayout } from './redis.keys';
import { readerScripts, RedisLockScripts, writerScripts } from './redis.scripts';
import { ReleaseSignals } from './release.signals';
import { errorMessage } from 'src/common/error-fields';

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
 * How `--cache-redis-addrs` is used:
 * - `standalone`: one address, a plain Redis server;
 * - `cluster`: several addresses (the seed nodes), or one address that answers `cluster_enabled:1`;
 * - `quorum`: `--cache-redis-redlock-quorum`, independent servers voting (a lock needs a majority).
 */
export type RedisTopology = 'standalone' | 'cluster' | 'quorum';

type Client = Redis | Cluster;

/** What the driver uses once it knows the topology. */
interface Connected {
  readonly topology: RedisTopology;
  /** The Redlock members: one client per server (standalone, quorum) or the one cluster client. */
  readonly clients: Client[];
  /** How each member is named in messages. */
  readonly names: string[];
  readonly keys: RedisKeyLayout;
  readonly waitingWriters: Redlock;
  readonly tryingWriters: Redlock;
  readonly readers: Redlock;
}

/**
 * Redis locks: Redlock over the topology's clients, with the read/write lock of redis.scripts.ts. A held
 * lock's keys live min(ttl, REDIS_LEASE_MAX_MS) and are extended every third of that while its holder
 * runs; releases are published so waiters of every instance wake at once.
 *
 * On a Redis Cluster, Redlock has one member (the ioredis Cluster client, which follows MOVED/ASK and
 * failovers), and a lock's keys share a hash tag so that its scripts run on one node. Release
 * notifications use plain PUBLISH, which Redis Cluster broadcasts to every node: the subscriber
 * connection may sit on any node, and ioredis moves it to another node when that one goes away.
 *
 * `--cache-redis-pool-size` has nothing to size here: ioredis pipelines every command over one
 * connection, so the driver opens two connections per address (commands, and pub/sub), or per node
 * of a cluster.
 */
export class RedisLockDriver implements LockDriver {
  readonly backend = 'redis';
  private readonly logger = new Logger('Locks');
  private readonly channel: string;
  private readonly commandTimeoutMs: number;
  private readonly tls: ConnectionOptions | undefined;
  private readonly leaseMaxMs: number;
  private readonly signals = new ReleaseSignals();
  /** Every connection opened, for close(). */
  private readonly opened = new Set<Client>();
  /** Last connection error of each client, for check() and the errors of attempts. */
  private readonly errors = new Map<Client, string>();
  private pendingSubscriptions = 0;
  private connected: Connected | undefined;
  /** A problem retrying will not fix (credentials, certificate, topology), found while connecting. */
  private misconfigured: LockBackendError | undefined;
  private closed = false;
  private diagnosedAt = 0;
  private readonly reported = new Set<string>();

  constructor(
    private readonly config: LockConfig,
    options: RedisDriverOptions = {},
  ) {
    const { addrs, redlockQuorum } = config.redis;
    if (addrs.length === 0) throw new Error('the redis lock backend needs --cache-redis-addrs');
    addrs.forEach(parseRedisAddress); // refuses a malformed address at once
    this.commandTimeoutMs = options.commandTimeoutMs ?? 2000;
    this.leaseMaxMs = options.leaseMaxMs ?? REDIS_LEASE_MAX_MS;
    this.channel = `${config.keyPrefix}released`;
    this.tls = redisTls(config.redis);

    if (redlockQuorum) this.useServers('quorum', addrs);
    else if (addrs.length > 1) this.useCluster(addrs);
    else this.detect(addrs[0]);
  }

  /** The topology in use; undefined while a single address has not answered yet. */
  get topology(): RedisTopology | undefined {
    return this.connected?.topology;
  }

  contend(key: string, ttlMs: number, shared: boolean, waiting: boolean): Contention {
    const duration = Math.max(1, Math.ceil(Math.min(ttlMs, this.leaseMaxMs)));
    return {
      attempt: async () => {
        const connected = this.connected;
        if (!connected) throw new LockBackendError(`Redis is not connected yet${this.lastErrors()}`);
        const redlock = shared ? connected.readers : waiting ? connected.waitingWriters : connected.tryingWriters;
        try {
          return new RedisLease(redlock, await redlock.acquire(connected.keys.resources(key), duration), duration);
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
    return this.signals.listen(key, listener);
  }

  /**
   * Waits (at most `timeoutMs`) until the topology is known, every connection is ready and the release
   * channel is subscribed. Throws when a connection failed in a way retrying cannot fix (wrong password,
   * untrusted certificate, addresses that are not what the configuration says): a clear error at start.
   */
  async ready(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.misconfigured) throw this.misconfigured;
      const connected = this.connected;
      if (connected && this.pendingSubscriptions === 0 && connected.clients.every((client) => client.status === 'ready')) return;
      if (Date.now() >= deadline) return;
      await new Promise((resolve) => setTimeout(resolve, Math.min(50, deadline - Date.now())));
    }
  }

  async check(): Promise<void> {
    const connected = this.connected;
    if (!connected) throw new LockBackendError(`Redis unreachable${this.lastErrors()}`);
    if (connected.topology === 'cluster') return this.checkCluster(connected.clients[0] as Cluster);
    const results = await Promise.allSettled(connected.clients.map((client) => client.ping()));
    const reachable = results.filter((result) => result.status === 'fulfilled').length;
    if (reachable >= quorum(connected.clients.length)) return;
    const problems = results.flatMap((result, i) =>
      result.status === 'rejected'
        ? [`${connected.names[i]}: ${this.errors.get(connected.clients[i]) ?? errorMessage(result.reason)}`]
        : [],
    );
    throw new LockBackendError(`Redis unreachable (${reachable} of ${connected.clients.length} servers answer): ${problems.join('; ')}`);
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.opened].map((client) => shutDown(client)));
  }

  /**
   * Every master of the slot map must answer: the locks whose slots a dead master serves fail. The
   * slot map, not the list of open connections: the client drops the connection of a dead node.
   */
  private async checkCluster(cluster: Cluster): Promise<void> {
    if (cluster.status !== 'ready') throw new LockBackendError(`Redis Cluster unreachable${this.lastErrors()}`);
    const masters = new Set<string>();
    for (const owners of cluster.slots) if (owners?.[0]) masters.add(owners[0]);
    const connections = new Map(cluster.nodes('all').map((node) => [`${node.options.host}:${node.options.port}`, node]));
    const results = await Promise.allSettled(
      [...masters].map(async (key) => {
        const node = connections.get(key);
        if (!node) throw new Error('not connected');
        await node.ping();
      }),
    );
    const problems = results.flatMap((result, i) =>
      result.status === 'rejected' ? [`${[...masters][i]}: ${errorMessage(result.reason)}`] : [],
    );
    if (masters.size > 0 && problems.length === 0) return;
    throw new LockBackendError(
      `Redis Cluster degraded (${masters.size - problems.length} of ${masters.size} masters answer)${problems.length ? `: ${problems.join('; ')}` : ''}`,
    );
  }

  /** One address: a plain server, unless it says it is a cluster node (then the cluster it belongs to). */
  private detect(addr: string): void {
    const probe = this.trackRedis(new Redis(redisOptions(addr, this.config.redis, 'commands', this.commandTimeoutMs, this.tls)), addr);
    const decide = async (): Promise<void> => {
      if (this.connected || this.closed) return;
      let info: string;
      try {
        info = await probe.info('cluster');
      } catch (error) {
        // The server answered but refused INFO (an ACL without it): not a cluster client's business.
        if (!(error instanceof ReplyError)) return; // unreachable again: decided at the next connection
        info = 'cluster_enabled:0';
      }
      if (this.connected || this.closed) return;
      probe.off('ready', onReady);
      if (!/^cluster_enabled:1/m.test(info)) {
        this.useServers('standalone', [addr], probe);
        return;
      }
      if (this.config.redis.db !== 0) {
        this.misconfigure(`Redis at ${addr} is a Redis Cluster node, and a cluster has only database 0: drop --cache-redis-db`);
        return;
      }
      this.logger.log({ backend: 'redis', addr }, 'Redis address is a cluster node: using Redis Cluster');
      this.useCluster([addr]);
      this.opened.delete(probe);
      void shutDown(probe);
    };
    const onReady = (): void => void decide();
    probe.on('ready', onReady);
    probe.connect().catch(() => undefined);
  }

  /** Plain servers: one (standalone) or several voting (quorum). `first` is an already open command client. */
  private useServers(topology: 'standalone' | 'quorum', addrs: string[], first?: Redis): void {
    const clients = addrs.map(
      (addr, i) =>
        (i === 0 && first) ||
        this.trackRedis(new Redis(redisOptions(addr, this.config.redis, 'commands', this.commandTimeoutMs, this.tls)), addr),
    );
    if (topology === 'quorum') {
      clients.forEach((client, i) => client.on('ready', () => void this.refuseClusterNode(client, addrs[i])));
    }
    const subscribers = addrs.map((addr) =>
      this.trackRedis(new Redis(redisOptions(addr, this.config.redis, 'subscriber', this.commandTimeoutMs, this.tls)), addr),
    );
    for (const client of [...clients, ...subscribers]) if (client.status === 'wait') client.connect().catch(() => undefined);
    this.connected = this.build(topology, clients, addrs, false);
    for (const subscriber of subscribers) this.subscribe(subscriber);
  }

  private useCluster(seeds: string[]): void {
    const nodes = seeds.map(parseRedisAddress);
    const name = seeds.join(',');
    const commands = this.trackCluster(
      new Cluster(nodes, clusterOptions(this.config.redis, 'commands', this.commandTimeoutMs, this.tls)),
      name,
    );
    const subscriber = this.trackCluster(
      new Cluster(nodes, clusterOptions(this.config.redis, 'subscriber', this.commandTimeoutMs, this.tls)),
      name,
    );
    commands.connect().catch(() => undefined);
    subscriber.connect().catch(() => undefined);
    this.connected = this.build('cluster', [commands], [name], true);
    this.subscribe(subscriber);
  }

  private build(topology: RedisTopology, clients: Client[], names: string[], hashTagged: boolean): Connected {
    // We do our own waiting (woken by releases), so Redlock makes exactly one attempt per call.
    const settings = { retryCount: 0 };
    // A waiting writer re-attempts at least every 2 × max-delay (backoff plus jitter); its mark outlives that.
    const announceTtlMs = 2 * this.config.retry.maxDelayMs + 1000;
    return {
      topology,
      clients,
      names,
      keys: redisKeyLayout(this.config.keyPrefix, hashTagged),
      waitingWriters: new Redlock(clients, settings, replacing(writerScripts(this.channel, true, announceTtlMs))),
      tryingWriters: new Redlock(clients, settings, replacing(writerScripts(this.channel, false, announceTtlMs))),
      readers: new Redlock(clients, settings, replacing(readerScripts(this.channel))),
    };
  }

  private subscribe(subscriber: Client): void {
    subscriber.on('message', (_channel: string, redisKey: string) => {
      const name = this.connected?.keys.lockName(redisKey);
      if (name !== undefined) this.signals.notify(name);
    });
    this.pendingSubscriptions += 1;
    subscriber
      .subscribe(this.channel)
      .catch(() => undefined)
      .finally(() => (this.pendingSubscriptions -= 1));
  }

  /** In quorum mode the addresses must be independent servers: a cluster node refuses the multi-key scripts. */
  private async refuseClusterNode(client: Redis, addr: string): Promise<void> {
    const info = await client.info('cluster').catch(() => '');
    if (/^cluster_enabled:1/m.test(info)) {
      this.misconfigure(
        `Redis at ${addr} is a Redis Cluster node, but --cache-redis-redlock-quorum is for independent servers: drop it to use the cluster`,
      );
    }
  }

  /** Keeps the last connection error of each client (for check()) and keeps ioredis from logging it raw. */
  private trackRedis(client: Redis, name: string): Redis {
    this.opened.add(client);
    client.on('error', (error: Error) => this.noteError(client, name, error));
    client.on('ready', () => {
      if (this.errors.delete(client)) this.logger.log({ backend: 'redis' }, 'reconnected to Redis');
    });
    return client;
  }

  private trackCluster(cluster: Cluster, name: string): Cluster {
    this.opened.add(cluster);
    // The slot map could not be loaded from any node; the last node's own error may say why. The
    // cluster client hides TLS and authentication failures behind "Connection is closed": diagnose.
    cluster.on('error', (error: Error & { lastNodeError?: Error }) => {
      this.noteError(cluster, name, error.lastNodeError ?? error);
      void this.diagnose(cluster, name.split(','));
    });
    cluster.on('node error', (error: Error, node: string) => this.noteError(cluster, node, error));
    cluster.on('ready', () => {
      if (this.errors.delete(cluster)) this.logger.log({ backend: 'redis' }, 'reconnected to Redis Cluster');
    });
    return cluster;
  }

  /**
   * Connects to each seed on its own, to learn what the cluster client does not say (an untrusted
   * certificate, refused credentials). At most once every 10 s.
   */
  private async diagnose(cluster: Cluster, seeds: string[]): Promise<void> {
    if (this.closed || Date.now() - this.diagnosedAt < 10_000) return;
    this.diagnosedAt = Date.now();
    await Promise.all(
      seeds.map(async (seed) => {
        const options = redisOptions(seed, { ...this.config.redis, db: 0 }, 'commands', this.commandTimeoutMs, this.tls);
        const probe = new Redis({ ...options, retryStrategy: () => null, connectionName: 'ncps-locks-diagnosis' });
        let failure: Error | undefined;
        probe.on('error', (error: Error) => (failure ??= error));
        try {
          await probe.connect();
          await probe.ping();
        } catch (error) {
          failure ??= error as Error;
        } finally {
          probe.disconnect();
        }
        if (failure && permanentProblem(failure, seed, this.config.redis.username)) this.noteError(cluster, seed, failure);
      }),
    );
  }

  private noteError(client: Client, name: string, error: Error): void {
    const problem = permanentProblem(error, name, this.config.redis.username);
    this.errors.set(client, problem ?? `${name}: ${error.message}`);
    if (problem && !this.connected?.clients.every((c) => c.status === 'ready')) this.misconfigure(problem);
  }

  /** Remembers the first such problem (ready() throws it) and logs each distinct one once. */
  private misconfigure(problem: string): void {
    this.misconfigured ??= new LockBackendError(problem);
    if (this.reported.has(problem)) return;
    this.reported.add(problem);
    this.logger.error({ backend: 'redis', error: problem }, 'cannot use Redis');
  }

  private lastErrors(): string {
    const errors = [...new Set(this.errors.values())];
    return errors.length > 0 ? `: ${errors.join('; ')}` : '';
  }
}

const UNTRUSTED_CERTIFICATE = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * A connection error that retrying will not fix, explained for the operator, or undefined. Never
 * includes the password: only the server's and the TLS layer's own words, and the user name.
 */
export function permanentProblem(error: Error & { code?: string }, name: string, username: string | undefined): string | undefined {
  if (/^(WRONGPASS|NOAUTH|NOPERM)\b/.test(error.message) || /invalid password/i.test(error.message)) {
    return `Redis at ${name} refused the credentials of user "${username ?? 'default'}" (${error.message}): check --cache-redis-username and --cache-redis-password`;
  }
  if (error.code && UNTRUSTED_CERTIFICATE.has(error.code)) {
    return `Redis at ${name}: TLS certificate not trusted (${error.code}: ${error.message}): give its CA with --cache-redis-ca-file or NODE_EXTRA_CA_CERTS`;
  }
  if (/cluster support disabled/i.test(error.message)) {
    return `Redis at ${name} is not a Redis Cluster: several --cache-redis-addrs are the nodes of one cluster; set --cache-redis-redlock-quorum to use independent servers voting`;
  }
  return undefined;
}

async function shutDown(client: Client): Promise<void> {
  if (client.status === 'ready') await client.quit().catch(() => client.disconnect());
  else if (client.status !== 'end') client.disconnect();
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
      this.controller.abort(failure === 'held' ? new Error('the lock expired or was taken before it could be extended') : failure);
    }
  }
}

/**
 * Redlock reports both "held by someone else" and "servers unreachable" as an ExecutionError; which
 * one it was is in the votes. A quorum that could not be reached because servers failed is a backend
 * error; otherwise the lock is held (or, for extend, no longer ours).
 */
async function classify(error: unknown): Promise<'held' | LockBackendError> {
  if (!(error instanceof ExecutionError))
    return new LockBackendError(`Redis lock operation failed: ${errorMessage(error)}`, { cause: error });
  const last = error.attempts[error.attempts.length - 1];
  if (last === undefined) return 'held'; // Redlock refused locally: the lock had already expired.
  const stats = await last;
  const failures = [...stats.votesAgainst.values()].filter((vote) => !(vote instanceof ResourceLockedError));
  if (stats.membershipSize - failures.length >= stats.quorumSize) return 'held';
  return new LockBackendError(`Redis unavailable: ${failures.map(errorMessage).join('; ')}`, { cause: failures[0] });
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
