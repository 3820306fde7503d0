import { Module, OnApplicationShutdown } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { Registry } from 'prom-client';
import { NcpsConfig } from 'src/config/config';
import { NCPS_CONFIG } from 'src/config/config.module';
import { Tracing } from 'src/telemetry';
import { createLockPort } from './lock.factory';
import { LockHealthIndicator } from './lock.health';
import { LockPort } from './lock.port';
import { tracedLocks } from './traced.lock';

/**
 * Provides LockPort, backed by `--cache-lock-backend` (local, redis or postgres), and its /health
 * indicator. Needs the global ConfigModule and MetricsModule. Closes the backend's connections on shutdown.
 */
@Module({
  imports: [TerminusModule],
  providers: [
    {
      provide: LockPort,
      inject: [NCPS_CONFIG, Registry, { token: Tracing, optional: true }],
      // With tracing on, lock waits are spans (see traced.lock.ts); the port is returned as it is otherwise.
      useFactory: async (config: NcpsConfig, registry: Registry, tracing?: Tracing) =>
        tracedLocks(await createLockPort(config, registry), tracing),
    },
    LockHealthIndicator,
  ],
  exports: [LockPort, LockHealthIndicator],
})
export class LockingModule implements OnApplicationShutdown {
  constructor(private readonly lock: LockPort) {}

  async onApplicationShutdown(): Promise<void> {
    await this.lock.close();
  }
}
