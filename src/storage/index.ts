export { StoragePort, assertSafeKey, type ByteRange, type PutResult, type StoredObject } from './storage.port';
export { StorageModule } from './storage.module';
export { StorageHealthIndicator } from './storage.health';
export { createStorage } from './storage.factory';
export { parseStorageLocation } from './storage.location';
export { migrateStorage, type MigrateStorageOptions, type MigrateStorageResult } from './migrate-storage';
export { LocalStorage } from './providers/local.storage';
// S3Storage is deliberately not re-exported: importing it loads the AWS SDK, which createStorage
// loads only when S3 is configured. Import it from './providers/s3.storage' where it is needed.
