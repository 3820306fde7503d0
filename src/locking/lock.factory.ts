import { Logger } from '@nestjs/common';
import { Registry } from 'prom-client';
import { NcpsConfig } from 'src/config/config';
import { CircuitBreakerOptions } from './circuit-breaker';
import { LockMetrics } from './lock.metrics';
import { LockPort } from './lock.port';
import { LockTelemetry } from './lock.telemetry';
import { LocalLockProvider } from './providers/local.lock';
import type { LockDriver } from './providers/lock.driver';
import type { PostgresDriverOptions } from './providers/postgres.driver';
import type { RedisDriverOptions } from './providers/redis.driver';

/** Knobs that are not user options: defaults fit production; tests shorten them. */
export interface LockPortOptions {
  breaker?: Partial<Pick<CircuitBreakerOptions, 'failureThreshold' | 'cooldownMs'>>;
  redis?: RedisDriverOptions;
  postgres?: PostgresDriverOptions;
  /** How long start-up waits for the backend's first connection before going on (the breaker takes over). */
  readyTimeoutMs?: number;
  /** Period of the acquire/release probe of the health key (0: none). */
  probeIntervalMs?: number;
}

const BREAKER_DEFAULTS = { failureThreshold: 5, cooldownMs: 10_000 };
const PROBE_INTERVAL_MS = 5000;

/** The one place that turns `--cache-lock-backend` into a LockPort. */
export async function createLockPort(
  config: Pick<NcpsConfig, 'lock' | 'database'>,
  registry: Registry,
  options: LockPortOptions = {},
): Promise<LockPort> {
  const metrics = new LockMetrics(registry);
  const telemetry = new LockTelemetry(metrics);
  const { lock } = config;
  // The distributed providers and their clients (ioredis, redlock, pg) are loaded only when configured:
  // a single instance on local locks never pays for them in start-up time or memory.
  const distributed = async (driver: LockDriver): Promise<LockPort> => {
    const { DistributedLock } = await import('./providers/distributed.lock');
    metrics.prime(lock.allowDegradedMode ? ['distributed', 'degraded'] : ['distributed'], [
      'timeout',
      `${driver.backend}_error`,
      'circuit_breaker',
      'lost',
    ]);
    const port = new DistributedLock(driver, telemetry, {
      allowDegradedMode: lock.allowDegradedMode,
      retry: lock.retry,
      breaker: { ...BREAKER_DEFAULTS, ...options.breaker },
      probeIntervalMs: options.probeIntervalMs ?? PROBE_INTERVAL_MS,
    });
    try {
      await port.ready(options.readyTimeoutMs ?? 5000);
    } catch (error) {
      // A misconfiguration (credentials, certificate, topology): stop reconnecting, and fail the start.
      await port.close();
      throw error;
    }
    return port;
  };

  const backend = lock.backend;
  switch (backend) {
    case 'local':
      metrics.prime(['local'], ['timeout']);
      // docs/ha.md's troubleshooting greps for this line to tell a single-instance setup.
      new Logger('Locks').log({ backend }, 'using local locks');
      return new LocalLockProvider(telemetry);
    case 'redis': {
      const { RedisLockDriver } = await import('./providers/redis.driver');
      return distributed(new RedisLockDriver(lock, options.redis));
    }
    case 'postgres': {
      const { PostgresLockDriver } = await import('./providers/postgres.driver');
      return distributed(new PostgresLockDriver(lock, config.database, options.postgres));
    }
    default: {
      const unknown: never = backend;
      throw new Error(`unknown lock backend: ${String(unknown)}`);
    }
  }
}
