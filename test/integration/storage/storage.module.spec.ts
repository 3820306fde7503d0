import { Test, TestingModule } from '@nestjs/testing';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NcpsConfig, StorageConfig } from 'src/config/config';
import { ConfigModule } from 'src/config/config.module';
import { LocalStorage, StorageHealthIndicator, StorageModule, StoragePort } from 'src/storage';
import { S3Storage } from 'src/storage/providers/s3.storage';
import { S3rverHandle, startS3rver } from 'test/support/s3rver';

/** Only `storage` is read by StorageModule. */
function configWith(storage: StorageConfig): NcpsConfig {
  return { storage } as NcpsConfig;
}

async function boot(storage: StorageConfig): Promise<TestingModule> {
  const moduleRef = await Test.createTestingModule({
    imports: [ConfigModule.forRoot(configWith(storage)), StorageModule],
  }).compile();
  return moduleRef.init();
}

describe('StorageModule', () => {
  let dir: string;
  let server: S3rverHandle;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ncps-storage-module-'));
    server = await startS3rver();
  });
  afterAll(async () => {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('provides local storage, reports it up, then down with the reason, and closes it at shutdown', async () => {
    const root = join(dir, 'local');
    const app = await boot({ kind: 'local', path: root });
    const storage = app.get(StoragePort);
    const health = app.get(StorageHealthIndicator);
    const close = jest.spyOn(storage, 'close');

    expect(storage).toBeInstanceOf(LocalStorage);
    expect(await health.check()).toEqual({ storage: { status: 'up', kind: 'local' } });
    await rm(root, { recursive: true });
    expect(await health.check()).toEqual({
      storage: {
        status: 'down',
        kind: 'local',
        message: `local storage directory ${root} does not exist (removed, or its volume is not mounted?)`,
      },
    });

    await app.close();
    expect(close).toHaveBeenCalledTimes(1);
  });

  it('provides S3 storage and explains a missing bucket', async () => {
    const app = await boot({ kind: 's3', s3: server.config });
    expect(app.get(StoragePort)).toBeInstanceOf(S3Storage);
    expect(await app.get(StorageHealthIndicator).check()).toEqual({ storage: { status: 'up', kind: 's3' } });
    await app.close();

    const missing = await boot({ kind: 's3', s3: { ...server.config, bucket: 'no-such-bucket' } });
    expect(await missing.get(StorageHealthIndicator).check()).toEqual({
      storage: {
        status: 'down',
        kind: 's3',
        message: `S3 bucket "no-such-bucket" at ${server.endpoint} does not exist (create it, or fix --cache-storage-s3-bucket)`,
      },
    });
    await missing.close();
  });

  it('fails to start when the local directory cannot be created, saying why', async () => {
    const underFile = join(dir, 'file-not-dir');
    await writeFile(underFile, '');

    await expect(boot({ kind: 'local', path: join(underFile, 'storage') })).rejects.toThrow(/is not a directory/);
  });
});
