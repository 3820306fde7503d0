import { mkdir, mkdtemp, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalStorage } from 'src/storage/providers/local.storage';
import { describeStorageConformance } from './storage.conformance';
import { collect, generated } from './storage.data';

const made: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ncps-local-storage-'));
  made.push(dir);
  return dir;
}
afterAll(async () => {
  await Promise.all(made.map((dir) => rm(dir, { recursive: true, force: true })));
});

describeStorageConformance(
  'local',
  async () => {
    const root = await tempDir();
    const storage = await LocalStorage.open(root);
    return {
      storage,
      leftovers: () => readdir(join(root, '.tmp')),
      teardown: async () => undefined,
    };
  },
  [
    {
      situation: 'the directory was removed',
      make: async () => {
        const root = await tempDir();
        const storage = await LocalStorage.open(root);
        await rm(root, { recursive: true });
        return storage;
      },
      message: /local storage directory .* does not exist/,
    },
    {
      // Tests run as root, whom permissions do not stop; a path through a file fails for anyone.
      situation: 'the path goes through a regular file',
      make: async () => {
        const file = join(await tempDir(), 'a-file');
        await writeFile(file, 'not a directory');
        return new LocalStorage(join(file, 'storage'));
      },
      message: /local storage directory .*a-file\/storage is not a directory/,
    },
  ],
);

describe('LocalStorage on disk', () => {
  it('creates its directory on open and explains when it cannot', async () => {
    const root = join(await tempDir(), 'new', 'storage');
    await LocalStorage.open(root);
    expect((await stat(join(root, '.tmp'))).isDirectory()).toBe(true);

    const file = join(await tempDir(), 'file');
    await writeFile(file, '');
    await expect(LocalStorage.open(join(file, 'storage'))).rejects.toThrow(/is not a directory/);
  });

  it('stores a key in a shard directory below its logical directory', async () => {
    const root = await tempDir();
    const sut = await LocalStorage.open(root);

    await sut.put('nar/1abc.nar.xz', generated('x', 10));

    const shards = await readdir(join(root, 'nar'));
    expect(shards).toHaveLength(1);
    expect(shards[0]).toMatch(/^[0-9a-f]{2}$/);
    expect(await readdir(join(root, 'nar', shards[0]))).toEqual(['1abc.nar.xz']);
  });

  it('putFile hard-links a file on its filesystem (no copy) and copies one from another filesystem', async () => {
    const root = await tempDir();
    const sut = await LocalStorage.open(root);
    const sameFs = join(await tempDir(), 'download.tmp');
    await writeFile(sameFs, 'linked bytes');

    expect(await sut.putFile('nar/1same.nar', sameFs)).toEqual({ size: 12, created: true });
    const [file, stored] = [await stat(sameFs), await stat(join(root, 'nar', (await readdir(join(root, 'nar')))[0], '1same.nar'))];
    expect(stored.ino).toBe(file.ino);
    expect(file.nlink).toBe(2);

    // /dev/shm is a tmpfs on Linux: link() across filesystems fails with EXDEV, and the bytes are copied.
    const otherFs = await mkdtemp(join('/dev/shm', 'ncps-put-file-'));
    made.push(otherFs);
    expect((await stat(otherFs)).dev).not.toBe((await stat(root)).dev);
    await writeFile(join(otherFs, 'download.tmp'), 'copied bytes!');
    expect(await sut.putFile('nar/1other.nar', join(otherFs, 'download.tmp'))).toEqual({ size: 13, created: true });
    expect(await collect((await sut.read('nar/1other.nar'))!)).toEqual(Buffer.from('copied bytes!'));
    expect((await stat(join(otherFs, 'download.tmp'))).nlink).toBe(1);
    expect(await readdir(join(root, '.tmp'))).toEqual([]);
  });

  it('ignores files that are not where it would have put a key', async () => {
    const root = await tempDir();
    const sut = await LocalStorage.open(root);
    await sut.put('nar/real', generated('real', 5));
    await mkdir(join(root, 'nar', 'zz'), { recursive: true });
    await writeFile(join(root, 'nar', 'zz', 'stray'), 'x');
    await writeFile(join(root, 'nar', 'loose'), 'x');

    const keys: string[] = [];
    for await (const object of sut.list('')) keys.push(object.key);

    expect(keys).toEqual(['nar/real']);
  });

  it('removes temporary files left by a crash on open, but not ones still being written', async () => {
    const root = await tempDir();
    await mkdir(join(root, '.tmp'), { recursive: true });
    const crashed = join(root, '.tmp', 'crashed.part');
    const live = join(root, '.tmp', 'live.part');
    await writeFile(crashed, 'half');
    await writeFile(live, 'half');
    const twoHoursAgo = new Date(Date.now() - 2 * 60 * 60 * 1000);
    await utimes(crashed, twoHoursAgo, twoHoursAgo);

    await LocalStorage.open(root);

    expect(await readdir(join(root, '.tmp'))).toEqual(['live.part']);
  });
});
