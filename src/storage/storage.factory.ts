import { StorageConfig } from 'src/config/config';
import { StoragePort } from './storage.port';
import { LocalStorage } from './providers/local.storage';

/**
 * The one place a storage provider is chosen: by the Nest module and by `ncps migrate-storage`.
 * The S3 provider is loaded only when configured: the AWS SDK is the largest thing ncps could load.
 */
export async function createStorage(config: StorageConfig): Promise<StoragePort> {
  switch (config.kind) {
    case 'local':
      return LocalStorage.open(config.path);
    case 's3': {
      const { S3Storage } = await import('./providers/s3.storage');
      return new S3Storage(config.s3);
    }
    default:
      throw new Error(`unknown storage kind: ${JSON.stringify((config as { kind: unknown }).kind)}`);
  }
}
