export { DatabaseModule } from './database.module';
export { DatabaseHealthIndicator } from './database.health';
export { NarInfoRepository, NewNarInfo } from './repositories/narinfo.repository';
export { NarFileRepository, NewNarFile } from './repositories/nar-file.repository';
export { ConfigRepository } from './repositories/config.repository';
export { NarInfoEntity, NarFileEntity } from './entities';
export { createDataSource } from './data-source';
export { applyMigrations, pendingMigrations } from './migrate';
