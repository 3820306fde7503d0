import { readFileSync } from 'node:fs';
import { ConnectionOptions } from 'node:tls';
import { ClusterOptions, RedisOptions } from 'ioredis';
import { RedisConfig } from 'src/config/config';
import { splitHostPort } from 'src/net';

/** `host:port`, `[v6]:port` or `host` (port 6379), as `--cache-redis-addrs` takes them. */
export function parseRedisAddress(addr: string): { host: string; port: number } {
  try {
    const { host, port } = splitHostPort(addr);
    if (host) return { host, port: port ?? 6379 };
  } catch {
    // described below
  }
  throw new Error(`invalid Redis address "${addr}": expected host:port`);
}

export type RedisRole = 'commands' | 'subscriber';

/**
 * TLS settings: none without `--cache-redis-use-tls`; otherwise the system CAs (plus NODE_EXTRA_CA_CERTS),
 * or only the CAs of `--cache-redis-ca-file`. The host is passed to tls.connect, so SNI and the
 * certificate's name check use the address as given.
 */
export function redisTls(redis: Pick<RedisConfig, 'useTls' | 'caFile'>): ConnectionOptions | undefined {
  if (!redis.useTls && !redis.caFile) return undefined;
  if (!redis.caFile) return {};
  try {
    return { ca: readFileSync(redis.caFile) };
  } catch (error) {
    throw new Error(`--cache-redis-ca-file ${redis.caFile}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
}

/** Options every connection shares, whatever the topology. `tls` is computed once by the caller. */
function common(redis: RedisConfig, tls: ConnectionOptions | undefined): RedisOptions {
  return {
    username: redis.username,
    password: redis.password,
    tls,
    connectionName: 'ncps-locks',
    connectTimeout: 5000,
    // How long a closing connection may linger; ioredis' default (2 s) holds up shutdown.
    disconnectTimeout: 200,
  };
}

/**
 * ioredis options for one server. The command connection fails fast while disconnected (no offline
 * queue, one retry, a command timeout), so a dead server shows up as errors that trip the circuit
 * breaker instead of requests piling up; the subscriber connection queues its SUBSCRIBE until it can
 * connect and re-subscribes after every reconnect. ioredis keeps reconnecting in the background.
 */
export function redisOptions(
  addr: string,
  redis: RedisConfig,
  role: RedisRole,
  commandTimeoutMs: number,
  tls: ConnectionOptions | undefined = redisTls(redis),
): RedisOptions {
  return {
    ...parseRedisAddress(addr),
    ...common(redis, tls),
    db: redis.db,
    lazyConnect: true,
    retryStrategy: (times) => Math.min(times * 100, 2000),
    ...(role === 'commands'
      ? { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: commandTimeoutMs }
      : { enableOfflineQueue: true, maxRetriesPerRequest: null }),
  };
}

/**
 * ioredis Cluster options. The client learns the slot map from any reachable seed, follows MOVED and
 * ASK redirections, and refreshes the map on failover (a replica promoted) and CLUSTERDOWN. Commands
 * fail fast while the cluster is not ready (the breaker counts them); a redirection or failover is
 * retried by the client, bounded by `maxRedirections`. Redis Cluster has only database 0.
 */
export function clusterOptions(
  redis: RedisConfig,
  role: RedisRole,
  commandTimeoutMs: number,
  tls: ConnectionOptions | undefined = redisTls(redis),
): ClusterOptions {
  return {
    lazyConnect: true,
    enableOfflineQueue: role === 'subscriber',
    clusterRetryStrategy: (times) => Math.min(times * 100, 2000),
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 100,
    retryDelayOnTryAgain: 100,
    // Redirections and failover retries of one command: MOVED/ASK need one or two; a dead node's
    // commands give up after ~0.6 s, and the lock's own retries and the breaker take over.
    maxRedirections: 6,
    slotsRefreshTimeout: Math.max(1000, commandTimeoutMs),
    // Notices a failover or resharding nobody was redirected by yet.
    slotsRefreshInterval: 5000,
    redisOptions: {
      ...common(redis, tls),
      ...(role === 'commands' ? { commandTimeout: commandTimeoutMs, maxRetriesPerRequest: 1 } : { maxRetriesPerRequest: null }),
    },
  };
}
