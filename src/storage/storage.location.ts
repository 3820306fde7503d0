import { resolve } from 'node:path';
import { S3StorageConfig, StorageConfig } from 'src/config/config';

/**
 * Parses a `migrate-storage` endpoint: `local:DIR`, or `s3` for the bucket configured with the
 * --cache-storage-s3-* options (credentials stay out of the command line).
 */
export function parseStorageLocation(spec: string, s3: S3StorageConfig | undefined): StorageConfig {
  if (spec.startsWith('local:')) {
    const path = spec.slice('local:'.length);
    if (!path) throw new Error(`"${spec}": give a directory after "local:"`);
    return { kind: 'local', path: resolve(path) };
  }
  if (spec === 's3') {
    if (!s3) throw new Error('"s3" needs the bucket to be configured (--cache-storage-s3-bucket and friends)');
    return { kind: 's3', s3 };
  }
  throw new Error(`"${spec}" is not a storage location: use local:DIR or s3`);
}
