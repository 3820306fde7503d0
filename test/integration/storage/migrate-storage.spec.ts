import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { migrateStorage } from 'src/storage/migrate-storage';
import { LocalStorage } from 'src/storage/providers/local.storage';
import { S3Storage } from 'src/storage/providers/s3.storage';
import { StoragePort, StoredObject } from 'src/storage/storage.port';
import { S3rverHandle, startS3rver } from 'test/support/s3rver';
import { MiB, digest, generated } from './storage.data';

const OBJECTS: StoredObject[] = [
  { key: 'nar/0abc.nar.xz', size: 9 * MiB },
  { key: 'nar/1def.nar.xz', size: 1000 },
  { key: 'nar/1ghi.nar', size: 0 },
  { key: 'narinfo/xyz.narinfo', size: 512 },
  { key: 'other/deep/file', size: 3 },
];
const TOTAL = OBJECTS.reduce((sum, o) => sum + o.size, 0);

async function all(storage: StoragePort): Promise<StoredObject[]> {
  const objects: StoredObject[] = [];
  for await (const object of storage.list()) objects.push(object);
  return objects.sort((a, b) => a.key.localeCompare(b.key));
}

describe('migrateStorage', () => {
  let server: S3rverHandle;
  const dirs: string[] = [];
  const opened: StoragePort[] = [];

  async function local(): Promise<LocalStorage> {
    const dir = await mkdtemp(join(tmpdir(), 'ncps-migrate-'));
    dirs.push(dir);
    const storage = await LocalStorage.open(dir);
    opened.push(storage);
    return storage;
  }
  async function s3(): Promise<S3Storage> {
    // A fresh server per test gives a fresh bucket; cheap with s3rver.
    await server?.stop();
    server = await startS3rver();
    const storage = new S3Storage(server.config);
    opened.push(storage);
    return storage;
  }
  async function seeded(): Promise<LocalStorage> {
    const storage = await local();
    for (const { key, size } of OBJECTS) await storage.put(key, generated(key, size));
    return storage;
  }

  afterAll(async () => {
    await Promise.all(opened.map((storage) => storage.close()));
    await server?.stop();
    await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it('copies local to S3 and back, byte for byte', async () => {
    const from = await seeded();
    const bucket = await s3();
    const back = await local();

    expect(await migrateStorage(from, bucket)).toEqual({ copied: 5, skipped: 0, failed: 0, bytes: TOTAL });
    expect(await migrateStorage(bucket, back)).toEqual({ copied: 5, skipped: 0, failed: 0, bytes: TOTAL });

    expect(await all(back)).toEqual(await all(from));
    for (const { key } of OBJECTS) {
      expect(await digest((await back.read(key))!)).toEqual(await digest((await from.read(key))!));
    }
  });

  it('resumes: objects already copied are skipped', async () => {
    const from = await seeded();
    const to = await s3();
    await to.put(OBJECTS[0].key, generated(OBJECTS[0].key, OBJECTS[0].size));
    await to.put(OBJECTS[3].key, generated(OBJECTS[3].key, OBJECTS[3].size));

    const first = await migrateStorage(from, to);
    const again = await migrateStorage(from, to);

    expect(first).toEqual({ copied: 3, skipped: 2, failed: 0, bytes: TOTAL - OBJECTS[0].size - OBJECTS[3].size });
    expect(again).toEqual({ copied: 0, skipped: 5, failed: 0, bytes: 0 });
    expect(await all(to)).toEqual(OBJECTS.slice().sort((a, b) => a.key.localeCompare(b.key)));
  });

  it('reports an object present on the target with another size, and leaves it alone', async () => {
    const from = await seeded();
    const to = await local();
    await to.put('nar/1def.nar.xz', generated('different', 10));
    const log: string[] = [];

    const result = await migrateStorage(from, to, { log: (line) => log.push(line) });

    expect(result).toEqual({ copied: 4, skipped: 0, failed: 1, bytes: TOTAL - 1000 });
    expect(log).toContain('nar/1def.nar.xz: already on the target with 10 bytes instead of 1000; left untouched');
    expect(await to.head('nar/1def.nar.xz')).toEqual({ key: 'nar/1def.nar.xz', size: 10 });
  });

  it('stops before copying anything when an end fails its check, saying why', async () => {
    const from = await seeded();
    await s3();
    const missing = new S3Storage({ ...server.config, bucket: 'no-such-bucket' });
    opened.push(missing);

    await expect(migrateStorage(from, missing)).rejects.toThrow(/S3 bucket "no-such-bucket" .* does not exist/);
  });

  it('writes nothing in a dry run', async () => {
    const from = await seeded();
    const to = await local();
    const log: string[] = [];

    const result = await migrateStorage(from, to, { dryRun: true, log: (line) => log.push(line) });

    expect(result).toEqual({ copied: 5, skipped: 0, failed: 0, bytes: TOTAL });
    expect(log).toContain('would copy nar/1def.nar.xz (1000 bytes)');
    expect(await all(to)).toEqual([]);
  });
});
