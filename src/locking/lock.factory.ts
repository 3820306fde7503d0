import { Logger } from '@nestjs/common';
import { Registry } from 'prom-client';
import { NcpsConfig } from 'src/config/config';
import { CircuitBreakerOptions } from './circuit-breaker';
import { LockMetrics } from './lock.metrics';
import { LockPort } from './lock.port';
import { LockTelemetry } from './lock.telemetry';
import { DistributedLock } from './providers/distributed.lock';
import { LocalLockProvider } from './providers/local.lock';
import { LockDriver } from './providers/lock.driver';
import { PostgresDriverOptions, PostgresLockDriver } from './providers/postgres.lock';
import { RedisDriverOptions, RedisLockDriver } from './providers/redis.lock';

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
  const distributed = async (driver: LockDriver): Promise<LockPort> => {
    metrics.prime(
      lock.allowDegradedMode ? ['distributed', 'degraded'] : ['distributed'],
      ['timeout', `${driver.backend}_error`, 'circuit_breaker', 'lost'],
    );
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
      // The seed's troubleshooting greps for this line to tell a single-instance setup.
      new Logger('Locks').log({ backend }, 'using local locks');
      return new LocalLockProvider(telemetry);
    case 'redis':
      return distributed(new RedisLockDriver(lock, options.redis));
    case 'postgres':
      return distributed(new PostgresLockDriver(lock, config.database, options.postgres));
    default: {
      const unknown: never = backend;
      throw new Error(`unknown lock backend: ${String(unknown)}`);
    }
  }
}
