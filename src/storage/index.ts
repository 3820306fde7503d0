export { StoragePort, assertSafeKey, type ByteRange, type PutResult, type StoredObject } from './storage.port';
export { StorageModule } from './storage.module';
export { StorageHealthIndicator } from './storage.health';
export { createStorage } from './storage.factory';
export { parseStorageLocation } from './storage.location';
export { migrateStorage, type MigrateStorageOptions, type MigrateStorageResult } from './migrate-storage';
export { LocalStorage } from './providers/local.storage';
export { S3Storage } from './providers/s3.storage';
