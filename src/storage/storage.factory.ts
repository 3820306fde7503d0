import { StorageConfig } from 'src/config/config';
import { StoragePort } from './storage.port';
import { LocalStorage } from './providers/local.storage';
import { S3Storage } from './providers/s3.storage';

/** The one place a storage provider is chosen: by the Nest module and by `ncps migrate-storage`. */
export async function createStorage(config: StorageConfig): Promise<StoragePort> {
  switch (config.kind) {
    case 'local':
      return LocalStorage.open(config.path);
    case 's3':
      return new S3Storage(config.s3);
    default:
      throw new Error(`unknown storage kind: ${JSON.stringify((config as { kind: unknown }).kind)}`);
  }
}
