import { Inject, Logger, Module, OnApplicationShutdown } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { DataSource } from 'typeorm';
import { NCPS_CONFIG } from 'src/config/config.module';
import { NcpsConfig } from 'src/config/config';
import { createDataSource } from './data-source';
import { applyMigrations } from './migrate';
import { DatabaseHealthIndicator } from './database.health';
import { ConfigRepository } from './repositories/config.repository';
import { NarFileRepository } from './repositories/nar-file.repository';
import { NarInfoRepository } from './repositories/narinfo.repository';
import { NarDownloadRepository } from './repositories/nar-download.repository';
import { NegativeNarInfoRepository } from './repositories/negative-narinfo.repository';
import { ArtifactRepository } from './repositories/artifact.repository';

const REPOSITORIES = [
  NarInfoRepository,
  NarFileRepository,
  ConfigRepository,
  NarDownloadRepository,
  NegativeNarInfoRepository,
  ArtifactRepository,
];

/** Connects to the configured database, applies pending migrations at start, exposes repositories. */
@Module({
  imports: [TerminusModule],
  providers: [
    {
      provide: DataSource,
      inject: [NCPS_CONFIG],
      useFactory: async (config: NcpsConfig) => {
        const ds = createDataSource(config.database);
        await ds.initialize();
        const applied = await applyMigrations(ds);
        if (applied.length > 0) new Logger('Database').log({ migrations: applied }, 'applied database migrations');
        return ds;
      },
    },
    ...REPOSITORIES,
    DatabaseHealthIndicator,
  ],
  exports: [DataSource, ...REPOSITORIES, DatabaseHealthIndicator],
})
export class DatabaseModule implements OnApplicationShutdown {
  constructor(@Inject(DataSource) private readonly dataSource: DataSource) {}

  async onApplicationShutdown(): Promise<void> {
    if (this.dataSource.isInitialized) await this.dataSource.destroy();
  }
}
