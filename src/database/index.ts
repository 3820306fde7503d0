export { DatabaseModule } from './database.module';
export { DatabaseHealthIndicator } from './database.health';
export {
  NarInfoRepository,
  NewNarInfo,
  LruCandidate,
  LruCandidateWithReferences,
  NarInfoReferences,
  ServedNarInfo,
} from './repositories/narinfo.repository';
export { NarFileRepository, NewNarFile, UnreferencedNarFile } from './repositories/nar-file.repository';
export { ConfigRepository } from './repositories/config.repository';
export { NarDownloadRepository } from './repositories/nar-download.repository';
export { NegativeNarInfoRepository } from './repositories/negative-narinfo.repository';
export { ArtifactRepository, NewArtifact, StoredArtifact } from './repositories/artifact.repository';
export { NarInfoEntity, NarFileEntity, ConfigEntryEntity, PinEntity } from './entities';
export { SqlRunner } from './sql/sql-runner';
export { createDataSource } from './data-source';
export { applyMigrations, pendingMigrations, migrateUp, MigrateUpResult, MigrationPlan } from './migrate';
export { migrateDatabase, MigrateDatabaseOptions, MigrateDatabaseReport } from './migrate-database';
export { withRetry, isRetryableDatabaseError } from './retry';
export { redactUrl } from './url/redact-url';
export { postgresConnectionOptions, PgConnectionOptions } from './url/postgres-url';
