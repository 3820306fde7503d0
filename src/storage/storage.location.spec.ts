import { resolve } from 'node:path';
import { S3StorageConfig } from 'src/config/config';
import { parseStorageLocation } from './storage.location';

const s3: S3StorageConfig = { bucket: 'cache', forcePathStyle: true };

describe('parseStorageLocation', () => {
  it('reads local:DIR as an absolute directory', () => {
    expect(parseStorageLocation('local:var/old', undefined)).toEqual({ kind: 'local', path: resolve('var/old') });
  });

  it('reads s3 as the configured bucket', () => {
    expect(parseStorageLocation('s3', s3)).toEqual({ kind: 's3', s3 });
  });

  it.each([
    ['local:', /give a directory/],
    ['s3', /needs the bucket to be configured/],
    ['gcs:bucket', /not a storage location: use local:DIR or s3/],
  ])('refuses %j', (spec, message) => {
    expect(() => parseStorageLocation(spec, undefined)).toThrow(message);
  });
});
