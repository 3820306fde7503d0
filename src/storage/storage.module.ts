import { Module, OnApplicationShutdown } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { NcpsConfig } from 'src/config/config';
import { NCPS_CONFIG } from 'src/config/config.module';
import { createStorage } from './storage.factory';
import { StorageHealthIndicator } from './storage.health';
import { StoragePort } from './storage.port';

/** Provides the configured StoragePort and its health indicator; closes the provider at shutdown. */
@Module({
  imports: [TerminusModule],
  providers: [
    { provide: StoragePort, inject: [NCPS_CONFIG], useFactory: (config: NcpsConfig) => createStorage(config.storage) },
    StorageHealthIndicator,
  ],
  exports: [StoragePort, StorageHealthIndicator],
})
export class StorageModule implements OnApplicationShutdown {
  constructor(private readonly storage: StoragePort) {}

  // The last shutdown phase, so services still writing in onModuleDestroy keep their storage.
  async onApplicationShutdown(): Promise<void> {
    await this.storage.close();
  }
}
