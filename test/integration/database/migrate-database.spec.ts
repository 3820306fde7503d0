import { DataSource } from 'typeorm';
import { DatabaseConfig } from 'src/config/config';
import { ArtifactRepository, ConfigRepository, NarFileRepository, NarInfoRepository, PinEntity, migrateDatabase } from 'src/database';
import { TestDatabase, createTestDatabase, openDataSource } from 'test/support/databases';
import { narFile, narinfo, randomHash } from './fixtures';

/** Every row of every table, without the surrogate ids (each database assigns its own). */
async function dump(config: DatabaseConfig) {
  const ds = await openDataSource(config, { migrate: false });
  try {
    const all = async <Row extends { id: number }>(repo: { pageAfterId(id: number, n: number): Promise<Row[]> }) => {
      const rows: Array<Omit<Row, 'id'>> = [];
      for (let page = await repo.pageAfterId(0, 500); page.length > 0; page = await repo.pageAfterId(page[page.length - 1].id, 500)) {
        rows.push(...page.map(({ id: _id, ...row }) => row));
      }
      return rows;
    };
    const narinfos = (await all(new NarInfoRepository(ds))).sort((a, b) => a.hash.localeCompare(b.hash));
    const narFiles = (await all(new NarFileRepository(ds))).sort((a, b) => a.key.localeCompare(b.key));
    const pins = await ds.getRepository(PinEntity).find({ order: { hash: 'ASC' } });
    const artifacts = [];
    const repo = new ArtifactRepository(ds);
    for (let page = await repo.pageAfterPath('', 500); page.length > 0; page = await repo.pageAfterPath(page[page.length - 1].path, 500)) {
      artifacts.push(...page);
    }
    artifacts.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    return { narinfos, narFiles, config: await new ConfigRepository(ds).all(), pins, artifacts };
  } finally {
    await ds.destroy();
  }
}

/** A source database with every kind of value the tables hold. */
async function seed(ds: DataSource): Promise<void> {
  const files = Array.from({ length: 250 }, (_, i) =>
    narFile({ fileSize: 2 ** 32 + i, fileHash: i % 3 ? null : `sha256:${randomHash()}` }),
  );
  await new NarFileRepository(ds).insertManyIfAbsent(files);
  const longRefs = Array.from({ length: 1500 }, () => `${randomHash()}-a-dependency-with-a-long-name`).join(' ');
  const rows = Array.from({ length: 300 }, (_, i) =>
    narinfo({
      url: files[i % files.length].key,
      refs: i === 7 ? longRefs : `${randomHash()}-glibc`,
      sigs: i % 2 ? 'a-1:c2ln\nb-1:c2ln' : '',
      ca: i % 5 ? null : 'fixed:r:sha256:1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s',
      fileSize: i % 4 ? 2 ** 40 + i : null,
      narSize: Number.MAX_SAFE_INTEGER - i,
      deriver: i % 6 ? null : `${randomHash()}-x.drv`,
      lastAccessedAt: 1_764_000_000_000 + i,
    }),
  );
  await new NarInfoRepository(ds).insertManyIfAbsent(rows);
  await new ArtifactRepository(ds).insertManyIfAbsent(
    Array.from({ length: 130 }, (_, i) => ({
      path: i % 2 ? `log/${randomHash()}-x.drv` : `${rows[i].hash}.ls`,
      kind: i % 2 ? 'log' : 'listing',
      storageKey: `k/${i}`,
      narInfoHash: i % 2 ? null : rows[i].hash,
      fileSize: 2 ** 33 + i,
      contentEncoding: i % 3 ? null : 'br',
      createdAt: 1_764_000_000_000,
      lastAccessedAt: 1_764_000_000_000 + i,
    })),
  );
  const config = new ConfigRepository(ds);
  await config.set('secret-key', 'cache.example.org-1:c2VjcmV0LWtleS1ieXRlcw==');
  await config.set('cluster-id', 'abc');
  await ds.getRepository(PinEntity).insert([
    { hash: rows[0].hash, createdAt: 1_764_000_000_000, expiresAt: null },
    { hash: randomHash(), createdAt: 1_764_000_000_001, expiresAt: 2 ** 42 },
  ]);
}

describe('migrateDatabase', () => {
  const databases: TestDatabase[] = [];
  const fresh = async (dialect: 'sqlite' | 'postgres' | 'mysql') => {
    const db = await createTestDatabase(dialect);
    databases.push(db);
    return db;
  };
  let sqlite: TestDatabase;

  beforeAll(async () => {
    sqlite = await fresh('sqlite');
    const ds = await openDataSource(sqlite.config);
    await seed(ds);
    await ds.destroy();
  });

  afterAll(async () => {
    await Promise.all(databases.map((db) => db.drop()));
  });

  it('copies SQLite → PostgreSQL → MariaDB preserving every row and the signing key', async () => {
    const [postgres, mysql] = [await fresh('postgres'), await fresh('mysql')];
    // A target that already generated its own key takes the source's.
    const early = await openDataSource(mysql.config);
    await new ConfigRepository(early).set('secret-key', 'its-own-key');
    await early.destroy();

    const first = await migrateDatabase(sqlite.config, postgres.url, { batchSize: 64 });
    const second = await migrateDatabase(postgres.url, mysql.config, { batchSize: 64 });

    const expected = {
      config: { source: 2, target: 2 },
      nar_files: { source: 250, target: 250 },
      narinfos: { source: 300, target: 300 },
      pins: { source: 2, target: 2 },
      artifacts: { source: 130, target: 130 },
    };
    expect(first).toEqual(expected);
    expect(second).toEqual(expected);
    const original = await dump(sqlite.config);
    expect(original.narinfos).toHaveLength(300);
    expect(original.pins).toHaveLength(2);
    expect(await dump(postgres.config)).toEqual(original);
    expect(await dump(mysql.config)).toEqual(original);
  });

  it('finishes an interrupted copy when run again', async () => {
    const target = await fresh('postgres');
    const crashAfterTwoBatches = (line: string) => {
      if (line.startsWith('narinfos: 128 ')) throw new Error('simulated crash');
    };

    await expect(migrateDatabase(sqlite.url, target.url, { batchSize: 64, log: crashAfterTwoBatches })).rejects.toThrow('simulated crash');
    expect((await dump(target.config)).narinfos).toHaveLength(128);

    const report = await migrateDatabase(sqlite.url, target.url, { batchSize: 64 });

    expect(report.narinfos).toEqual({ source: 300, target: 300 });
    expect(await dump(target.config)).toEqual(await dump(sqlite.config));
  });

  it('logs progress with the password masked', async () => {
    const target = await fresh('postgres');
    const lines: string[] = [];

    // The test server trusts every connection, so any password works, and must not show.
    await migrateDatabase(sqlite.url, target.url.replace('postgres@', 'postgres:s3cret-pw@'), { log: (l) => lines.push(l) });

    expect(lines[0]).toMatch(/^copying sqlite:.* to postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:5432\/ncps_test_/);
    expect(lines).toContain('narinfos: 300 rows in the source, 300 in the target');
    expect(lines.join('\n')).not.toContain('s3cret-pw');
  });

  it('refuses a source whose schema is behind', async () => {
    const empty = await fresh('sqlite');
    const target = await fresh('sqlite');

    await expect(migrateDatabase(empty.url, target.url)).rejects.toThrow(
      /source database has unapplied migrations \(InitialSchema\d+.*\); run ncps migrate up on it first/,
    );
  });
});
