import { RedisOptions } from 'ioredis';
import { RedisConfig } from 'src/config/config';

/** `host:port`, `[v6]:port` or `host` (port 6379), as `--cache-redis-addrs` takes them. */
export function parseRedisAddress(addr: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]+))(?::(\d+))?$/.exec(addr.trim());
  if (!match) throw new Error(`invalid Redis address "${addr}": expected host:port`);
  return { host: match[1] ?? match[2], port: match[3] ? Number(match[3]) : 6379 };
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
  role: 'commands' | 'subscriber',
  commandTimeoutMs: number,
): RedisOptions {
  return {
    ...parseRedisAddress(addr),
    username: redis.username,
    password: redis.password,
    db: redis.db,
    // The host is passed to tls.connect too, so SNI and certificate checks use it.
    tls: redis.useTls ? {} : undefined,
    connectionName: 'ncps-locks',
    lazyConnect: true,
    connectTimeout: 5000,
    // How long a closing connection may linger; ioredis' default (2 s) holds up shutdown.
    disconnectTimeout: 200,
    retryStrategy: (times) => Math.min(times * 100, 2000),
    ...(role === 'commands'
      ? { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: commandTimeoutMs }
      : { enableOfflineQueue: true, maxRetriesPerRequest: null }),
  };
}
