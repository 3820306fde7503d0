import { DataSource } from 'typeorm';
import { ArtifactRepository, NarInfoRepository, NewArtifact } from 'src/database';
import { TEST_DIALECTS, TestDatabase, createTestDatabase, openDataSource } from 'test/support/databases';
import { narinfo, randomHash } from './fixtures';

function artifact(overrides: Partial<NewArtifact> = {}): NewArtifact {
  const path = overrides.path ?? `log/${randomHash()}-hello.drv`;
  return {
    path,
    kind: 'log',
    storageKey: path,
    narInfoHash: null,
    fileSize: 1234,
    contentEncoding: null,
    createdAt: 1_764_000_000_000,
    lastAccessedAt: 1_764_000_000_000,
    ...overrides,
  };
}

/** The contract of ArtifactRepository, held against each dialect in a fresh database of its own. */
describe.each(TEST_DIALECTS)('ArtifactRepository on %s', (dialect) => {
  let db: TestDatabase;
  let ds: DataSource;
  let sut: ArtifactRepository;
  let narinfos: NarInfoRepository;

  beforeAll(async () => {
    db = await createTestDatabase(dialect);
    ds = await openDataSource(db.config);
    sut = new ArtifactRepository(ds);
    narinfos = new NarInfoRepository(ds);
  });

  afterAll(async () => {
    await ds?.destroy();
    await db?.drop();
  });

  beforeEach(async () => {
    for (const table of ['artifacts', 'narinfos']) await ds.query(`DELETE FROM ${table}`);
  });

  it('round-trips a row with every field, a long path and a size beyond 2^32; the first insert of a path stays', async () => {
    const long = `build-trace-v2/${randomHash()}-${'n'.repeat(211)}.drv/${'o'.repeat(200)}.doi`;
    const row = artifact({
      path: long,
      kind: 'build-trace',
      storageKey: `k/${'x'.repeat(900)}`,
      narInfoHash: randomHash(),
      fileSize: 2 ** 40 + 7,
      contentEncoding: 'br',
    });
    expect(long.length).toBeGreaterThan(450);

    await sut.insertIfAbsent(row);
    await sut.insertIfAbsent({ ...row, fileSize: 1, contentEncoding: null });

    expect(await sut.findByPath(long)).toEqual(row);
    expect(await sut.findByPath('log/other')).toBeNull();
  });

  it('tells paths apart by case', async () => {
    await sut.insertIfAbsent(artifact({ path: 'debuginfo/abcdef01' }));
    expect(await sut.findByPath('debuginfo/ABCDEF01')).toBeNull();
  });

  it('deletes by path, sums the stored sizes and moves access times forward only', async () => {
    const a = artifact({ fileSize: 100 });
    const b = artifact({ fileSize: 2 ** 33 });
    await sut.insertIfAbsent(a);
    await sut.insertIfAbsent(b);
    expect(await sut.sumStoredBytes()).toBe(100 + 2 ** 33);

    await sut.touch(
      new Map([
        [a.path, 1_764_000_500_000],
        [b.path, 1_000],
        ['log/absent', 5],
      ]),
    );
    expect((await sut.findByPath(a.path))?.lastAccessedAt).toBe(1_764_000_500_000);
    expect((await sut.findByPath(b.path))?.lastAccessedAt).toBe(b.lastAccessedAt);

    expect(await sut.deleteByPath(a.path)).toBe(true);
    expect(await sut.deleteByPath(a.path)).toBe(false);
    expect(await sut.sumStoredBytes()).toBe(2 ** 33);
  });

  it('finds the listings a narinfo owns, and the unowned ones by last access, oldest first', async () => {
    const owner = narinfo();
    await narinfos.insertIfAbsent(owner);
    const owned = artifact({ path: `${owner.hash}.ls`, kind: 'listing', narInfoHash: owner.hash, lastAccessedAt: 10 });
    const orphan = randomHash();
    const orphanListing = artifact({ path: `${orphan}.ls`, kind: 'listing', narInfoHash: orphan, lastAccessedAt: 30 });
    const oldLog = artifact({ lastAccessedAt: 20 });
    const newLog = artifact({ lastAccessedAt: 40 });
    for (const row of [owned, orphanListing, oldLog, newLog]) await sut.insertIfAbsent(row);

    expect((await sut.findOwnedBy(owner.hash)).map((a) => a.path)).toEqual([owned.path]);
    expect(await sut.findOwnedBy(orphan)).toEqual([
      { path: orphanListing.path, storageKey: orphanListing.storageKey, fileSize: 1234, lastAccessedAt: 30 },
    ]);
    const unowned = async (before: number, limit: number) => (await sut.findUnownedAccessedBefore(before, limit)).map((a) => a.path);
    expect(await unowned(Number.MAX_SAFE_INTEGER, 10)).toEqual([oldLog.path, orphanListing.path, newLog.path]);
    expect(await unowned(40, 10)).toEqual([oldLog.path, orphanListing.path]);
    expect(await unowned(Number.MAX_SAFE_INTEGER, 1)).toEqual([oldLog.path]);
  });
});
