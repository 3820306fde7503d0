import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Registry } from 'prom-client';
import { DataSource } from 'typeorm';
import { runCli } from 'src/cli/cli';
import { buildConfig } from 'src/config/build-config';
import { DatabaseConfig } from 'src/config/config';
import { resolveOptions } from 'src/config/resolve';
import { NarFileRepository, NarInfoRepository } from 'src/database';
import { LockPort, downloadNarKey } from 'src/locking';
import { createLockPort } from 'src/locking/lock.factory';
import { nix32Encode } from 'src/nix';
import { StoragePort, createStorage } from 'src/storage';
import { createTestDatabase, openDataSource, TestDatabase } from 'test/support/databases';
import { S3rverHandle, startS3rver } from 'test/support/s3rver';

/** Well past the upload grace period, so nothing is spared for being new. */
const LONG_AGO = Date.now() - 3_600_000;

interface Setup {
  name: string;
  /** Whether another process's locks are visible to fsck (local locks are per process). */
  sharedLocks: boolean;
  start(): Promise<{ flags: Record<string, string>; database: DatabaseConfig; storage: StoragePort; cleanup(): Promise<void> }>;
}

/** A database of `dialect` with local storage and local locks. */
function localSetup(name: string, dialect: 'sqlite' | 'mysql'): Setup {
  return {
    name,
    sharedLocks: false,
    async start() {
      const dir = await mkdtemp(join(tmpdir(), 'ncps-fsck-'));
      const db = await createTestDatabase(dialect);
      const storage = await createStorage({ kind: 'local', path: join(dir, 'storage') });
      return {
        flags: { 'cache-data-dir': dir, 'cache-database-url': db.url, 'cache-storage-local': join(dir, 'storage') },
        database: db.config,
        storage,
        cleanup: async () => {
          await storage.close();
          await db.drop();
          await rm(dir, { recursive: true, force: true });
        },
      };
    },
  };
}

const SETUPS: Setup[] = [
  localSetup('SQLite, local storage, local locks', 'sqlite'),
  localSetup('MariaDB, local storage, local locks', 'mysql'),
  {
    name: 'PostgreSQL, S3 (s3rver), PostgreSQL locks',
    sharedLocks: true,
    async start() {
      const dir = await mkdtemp(join(tmpdir(), 'ncps-fsck-'));
      const db: TestDatabase = await createTestDatabase('postgres');
      const s3: S3rverHandle = await startS3rver();
      const storage = await createStorage({ kind: 's3', s3: s3.config });
      return {
        flags: {
          'cache-data-dir': dir,
          'cache-database-url': db.url,
          'cache-lock-backend': 'postgres',
          'cache-storage-s3-bucket': s3.bucket,
          'cache-storage-s3-endpoint': s3.endpoint,
          'cache-storage-s3-region': 'us-east-1',
          'cache-storage-s3-access-key-id': 'S3RVER',
          'cache-storage-s3-secret-access-key': 'S3RVER',
          'cache-storage-s3-force-path-style': 'true',
        },
        database: db.config,
        storage,
        cleanup: async () => {
          await storage.close();
          await s3.stop();
          await db.drop();
          await rm(dir, { recursive: true, force: true });
        },
      };
    },
  },
];

/** A NAR file as serving stores it: its key is named by its FileHash. */
function makeNar(): { bytes: Buffer; key: string; fileHash: string; hash: string } {
  const bytes = randomBytes(2048 + Math.floor(Math.random() * 1024));
  const digest = nix32Encode(createHash('sha256').update(bytes).digest());
  return { bytes, key: `nar/${digest}.nar.xz`, fileHash: `sha256:${digest}`, hash: digest };
}

describe.each(SETUPS)('ncps fsck on $name', (setup) => {
  let flags: Record<string, string>;
  let storage: StoragePort;
  let cleanup: () => Promise<void>;
  let ds: DataSource;
  let narInfos: NarInfoRepository;
  let narFiles: NarFileRepository;

  beforeAll(async () => {
    let database: DatabaseConfig;
    ({ flags, database, storage, cleanup } = await setup.start());
    ds = await openDataSource(database);
    narInfos = new NarInfoRepository(ds);
    narFiles = new NarFileRepository(ds);
  });

  afterAll(async () => {
    await ds?.destroy();
    await cleanup?.();
  });

  async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const argv = ['fsck', ...Object.entries(flags).flatMap(([flag, value]) => [`--${flag}`, value]), '--log-level', 'warn', ...args];
    let stdout = '';
    let stderr = '';
    const out = jest.spyOn(process.stdout, 'write').mockImplementation((chunk) => ((stdout += String(chunk)), true));
    const err = jest.spyOn(process.stderr, 'write').mockImplementation((chunk) => ((stderr += String(chunk)), true));
    try {
      return { code: await runCli(argv, {}), stdout, stderr };
    } finally {
      out.mockRestore();
      err.mockRestore();
    }
  }

  /** narinfo, nar_files row and object, each only when asked for: how drift is made on purpose. */
  async function store(nar: ReturnType<typeof makeNar>, parts: { narinfo?: boolean; row?: boolean; object?: boolean; uploaded?: boolean }) {
    if (parts.object) await storage.put(nar.key, Readable.from([nar.bytes]));
    if (parts.row) {
      await narFiles.insertIfAbsent({
        key: nar.key,
        compression: 'xz',
        fileSize: nar.bytes.length,
        fileHash: nar.fileHash,
        createdAt: LONG_AGO,
        lastAccessedAt: LONG_AGO,
      });
    }
    if (parts.narinfo) {
      await narInfos.insertIfAbsent({
        hash: nar.hash.slice(0, 32),
        storePath: `/nix/store/${nar.hash.slice(0, 32)}-fsck-test`,
        url: nar.key,
        compression: 'xz',
        fileHash: nar.fileHash,
        fileSize: nar.bytes.length,
        narHash: `sha256:${nix32Encode(randomBytes(32))}`,
        narSize: nar.bytes.length * 2,
        refs: '',
        deriver: null,
        system: null,
        ca: null,
        sigs: '',
        upstreamUrl: parts.uploaded ? null : 'http://upstream.test',
        upstreamNarUrl: parts.uploaded ? null : `${nar.key}?from=upstream`,
        verified: true,
        createdAt: LONG_AGO,
        lastAccessedAt: LONG_AGO,
      });
    }
  }

  const nars = {
    healthy: makeNar(),
    missing: makeNar(),
    resized: makeNar(),
    flipped: makeNar(),
    unreferenced: makeNar(),
    orphan: makeNar(),
    untracked: makeNar(),
    unservable: makeNar(),
  };

  it('reports each kind of drift, repairs it, leaves a NAR being downloaded alone, and is clean afterwards', async () => {
    const { healthy, missing, resized, flipped, unreferenced, orphan, untracked, unservable } = nars;
    const all = { narinfo: true, row: true, object: true };
    await store(healthy, all);
    await store(missing, { narinfo: true, row: true });
    await store(resized, all);
    await storage.delete(resized.key);
    await storage.put(resized.key, Readable.from([resized.bytes.subarray(1)]));
    await store(flipped, all);
    await storage.delete(flipped.key);
    const rotten = Buffer.from(flipped.bytes);
    rotten[100] ^= 0x01;
    await storage.put(flipped.key, Readable.from([rotten]));
    await store(unreferenced, { row: true, object: true });
    await store(orphan, { object: true });
    await store(untracked, { narinfo: true, object: true });
    await store(unservable, { narinfo: true, uploaded: true });

    const check = await cli();
    expect(check.code).toBe(1);
    const lines = check.stdout.trim().split('\n');
    expect(lines).toEqual(
      expect.arrayContaining([
        expect.stringMatching(`^missing-object ${missing.key}: `),
        expect.stringMatching(`^size-mismatch ${resized.key}: storage has ${resized.bytes.length - 1} bytes`),
        expect.stringMatching(`^unreferenced-nar ${unreferenced.key}: `),
        expect.stringMatching(`^orphan-object ${orphan.key}: `),
        expect.stringMatching(`^untracked-object ${untracked.key}: `),
        expect.stringMatching(`^unservable-narinfo ${unservable.hash.slice(0, 32)}.narinfo: `),
      ]),
    );
    expect(lines).toHaveLength(7);
    expect(lines[6]).toMatch(
      /^fsck: checked 5 NAR files, 6 narinfos, 6 stored objects; found .*; 6 left \(run with --repair to fix them\)$/,
    );

    const verify = await cli('--verify-content', '--json');
    expect(verify.code).toBe(1);
    const report = JSON.parse(verify.stdout);
    expect(report.clean).toBe(false);
    expect(report.byKind['corrupt-object']).toEqual({ found: 1, repaired: 0 });
    expect(report.findings.find((f: { kind: string }) => f.kind === 'corrupt-object').key).toBe(flipped.key);
    expect(report.left).toBe(7);

    // A download of the resized NAR running elsewhere: its download lock is held.
    let locks: LockPort | undefined;
    let release = (): void => undefined;
    let holder: Promise<void> = Promise.resolve();
    if (setup.sharedLocks) {
      const config = buildConfig(resolveOptions({ flags: { ...flags, 'log-level': 'warn' }, env: {} }));
      locks = await createLockPort(config, new Registry());
      const held = new Promise<void>((resolve) => (release = resolve));
      let acquired!: () => void;
      const taken = new Promise<void>((resolve) => (acquired = resolve));
      holder = locks.withLock(downloadNarKey(resized.hash), 60_000, async () => {
        acquired();
        await held;
      });
      await taken;
    }
    try {
      const repair = await cli('--repair', '--verify-content');
      expect(repair.stdout).toMatch(
        new RegExp(`^corrupt-object ${flipped.key}: .* — repaired: deleted its nar_files row and the object`, 'm'),
      );
      expect(repair.stdout).toMatch(new RegExp(`^untracked-object ${untracked.key}: .* — repaired: recorded its nar_files row`, 'm'));
      if (setup.sharedLocks) {
        expect(repair.code).toBe(1);
        expect(repair.stdout).toMatch(
          new RegExp(`^size-mismatch ${resized.key}: .* — not repaired: being downloaded or uploaded; left alone`, 'm'),
        );
        expect((await storage.head(resized.key))?.size).toBe(resized.bytes.length - 1);
        expect(repair.stdout).toMatch(/; 1 left$/m);
      } else {
        expect(repair.code).toBe(0);
        expect(repair.stdout).toMatch(/; all repaired$/m);
      }
    } finally {
      release();
      await holder;
      await locks?.close();
    }

    const again = await cli('--repair');
    expect(again.code).toBe(0);
    const clean = await cli('--verify-content');
    expect(clean.stdout).toMatch(/; clean$/m);
    expect(clean.code).toBe(0);

    // What is left is what can be served: the healthy NAR untouched, narinfos with an upstream kept (their
    // NARs are fetched again on the next request), the uploaded narinfo without a NAR gone.
    expect((await storage.head(healthy.key))?.size).toBe(healthy.bytes.length);
    expect(await narFiles.findByKey(missing.key)).toBeNull();
    expect(await narInfos.findOneByUrl(missing.key)).not.toBeNull();
    expect(await storage.head(flipped.key)).toBeNull();
    expect(await narInfos.findOneByUrl(flipped.key)).not.toBeNull();
    expect(await storage.head(resized.key)).toBeNull();
    expect(await storage.head(unreferenced.key)).toBeNull();
    expect(await narFiles.findByKey(unreferenced.key)).toBeNull();
    expect(await storage.head(orphan.key)).toBeNull();
    expect(await narFiles.findByKey(untracked.key)).toMatchObject({ fileSize: untracked.bytes.length, fileHash: untracked.fileHash });
    expect(await narInfos.findOneByUrl(unservable.key)).toBeNull();
  }, 60_000);

  it('exits 2 on a usage or configuration error', async () => {
    const usage = await cli('--no-such-flag');
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain("unknown option '--no-such-flag'");

    const config = await cli('--cache-lock-backend', 'zookeeper');
    expect(config.code).toBe(2);
    expect(config.stderr).toContain('cache-lock-backend');
  });
});
