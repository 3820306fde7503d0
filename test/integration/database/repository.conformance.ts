import { DataSource } from 'typeorm';
import { DatabaseDialect } from 'src/config/config';
import { ConfigRepository, NarDownloadRepository, NarFileRepository, NarInfoRepository, NegativeNarInfoRepository } from 'src/database';
import { PinRepository } from 'src/pins/pin.repository';
import { TestDatabase, createTestDatabase, openDataSource } from 'test/support/databases';
import { narFile, narinfo, randomHash } from './fixtures';

/** Separate connections: one data source (own pool) each, as separate ncps instances would have. */
async function openMany(db: TestDatabase, count: number): Promise<DataSource[]> {
  return Promise.all(
    Array.from({ length: count }, () => openDataSource({ ...db.config, poolMaxOpen: 1, poolMaxIdle: 1 }, { migrate: false })),
  );
}

/**
 * The contract of NarInfoRepository, NarFileRepository, and ConfigRepository,
 * held against one dialect in a fresh database of its own. Every dialect must pass all of it.
 */
export function repositoryConformance(dialect: DatabaseDialect): void {
  describe(`repositories on ${dialect}`, () => {
    let db: TestDatabase;
    let ds: DataSource;
    let narinfos: NarInfoRepository;
    let narFiles: NarFileRepository;
    let config: ConfigRepository;

    beforeAll(async () => {
      db = await createTestDatabase(dialect);
      ds = await openDataSource(db.config);
      narinfos = new NarInfoRepository(ds);
      narFiles = new NarFileRepository(ds);
      config = new ConfigRepository(ds);
    });

    afterAll(async () => {
      await ds?.destroy();
      await db?.drop();
    });

    beforeEach(async () => {
      for (const table of ['narinfos', 'nar_files', 'config', 'nar_downloads', 'pins', 'negative_narinfos'])
        await ds.query(`DELETE FROM ${table}`);
    });

    describe('NarInfoRepository', () => {
      it('round-trips a narinfo with every field, long references and sizes beyond 2^32', async () => {
        const refs = Array.from({ length: 2000 }, () => `${randomHash()}-some-library-with-a-long-name-1.2.3`).join(' ');
        const row = narinfo({
          refs,
          sigs: 'cache.nixos.org-1:c2lnMQ==\nother-cache-1:c2lnMg==',
          ca: 'fixed:r:sha256:1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s',
          fileSize: 2 ** 40 + 7,
          narSize: Number.MAX_SAFE_INTEGER,
          createdAt: 1_764_000_000_123,
          lastAccessedAt: 1_764_000_000_456,
        });
        expect(refs.length).toBeGreaterThan(65_536);

        await narinfos.insertIfAbsent(row);

        const { id, ...stored } = (await narinfos.findByHash(row.hash))!;
        expect(stored).toEqual(row);
        expect(typeof id).toBe('number');
      });

      it('round-trips nulls in every nullable field', async () => {
        const row = narinfo({
          fileHash: null,
          fileSize: null,
          deriver: null,
          system: null,
          ca: null,
          upstreamUrl: null,
          upstreamNarUrl: null,
          refs: '',
          sigs: '',
        });

        await narinfos.insertIfAbsent(row);

        const { id: _id, ...stored } = (await narinfos.findByHash(row.hash))!;
        expect(stored).toEqual(row);
      });

      it('round-trips whether a narinfo was verified, through every way of writing it; rows written without it are verified', async () => {
        const unverified = narinfo({ verified: false });
        const many = [narinfo({ verified: false }), narinfo({ verified: true })];
        await narinfos.insertIfAbsent(unverified);
        await narinfos.insertManyIfAbsent(many);
        const q = (name: string) => (ds.options.type === 'mysql' ? `\`${name}\`` : `"${name}"`);
        const legacy = narinfo();
        await ds.query(
          `INSERT INTO narinfos (${['hash', 'store_path', 'url', 'compression', 'nar_hash', 'nar_size', 'refs', 'sigs', 'created_at', 'last_accessed_at'].map(q).join(', ')}) ` +
            `VALUES ('${legacy.hash}', '${legacy.storePath}', '${legacy.url}', 'xz', '${legacy.narHash}', 1, '', '', 1, 1)`,
        );

        expect((await narinfos.findByHash(unverified.hash))?.verified).toBe(false);
        expect((await narinfos.findByHash(many[0].hash))?.verified).toBe(false);
        expect((await narinfos.findByHash(many[1].hash))?.verified).toBe(true);
        expect((await narinfos.findByHash(legacy.hash))?.verified).toBe(true);
        await narinfos.upsert({ ...unverified, verified: true });
        expect((await narinfos.findByHash(unverified.hash))?.verified).toBe(true);
        const paged = await narinfos.pageAfterId(0, 10);
        expect(paged.map((row) => typeof row.verified)).toEqual(['boolean', 'boolean', 'boolean', 'boolean']);
      });

      it('finds nothing for an unknown hash', async () => {
        await expect(narinfos.findByHash(randomHash())).resolves.toBeNull();
        await expect(narinfos.findServedByHash(randomHash())).resolves.toBeNull();
      });

      it('findServedByHash reads what serving needs, typed as the entity is, and sees every later write', async () => {
        const served = ({
          hash: _h,
          upstreamUrl: _u,
          upstreamNarUrl: _n,
          createdAt: _c,
          lastAccessedAt: _l,
          ...rest
        }: ReturnType<typeof narinfo>) => rest;
        const row = narinfo({
          fileSize: 2 ** 40 + 7,
          narSize: Number.MAX_SAFE_INTEGER,
          ca: 'fixed:r:sha256:1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s',
          verified: false,
        });
        const bare = narinfo({ fileHash: null, fileSize: null, deriver: null, system: null, ca: null, refs: '', sigs: '' });
        await narinfos.insertManyIfAbsent([row, bare]);

        await expect(narinfos.findServedByHash(row.hash)).resolves.toEqual(served(row));
        await expect(narinfos.findServedByHash(bare.hash)).resolves.toEqual(served(bare));
        // The statement is prepared once; what it reads is not.
        const replaced = { ...row, url: 'nar/replaced.nar.xz', sigs: 'other-cache-1:c2lnMg==', verified: true };
        await narinfos.upsert(replaced);
        await expect(narinfos.findServedByHash(row.hash)).resolves.toEqual(served(replaced));
        await narinfos.deleteByHash(row.hash);
        await expect(narinfos.findServedByHash(row.hash)).resolves.toBeNull();
      });

      it('findServedByHash sees what another connection wrote, and nothing of a transaction rolled back', async () => {
        const row = narinfo();
        await narinfos.insertIfAbsent(row);
        // Asked twice: a dialect may remember the row (SQLite does, until the database changes).
        for (let i = 0; i < 2; i++) await expect(narinfos.findServedByHash(row.hash)).resolves.toMatchObject({ url: row.url });
        const [other] = await openMany(db, 1);
        try {
          await new NarInfoRepository(other).upsert({ ...row, url: 'nar/elsewhere.nar' });
          await expect(narinfos.findServedByHash(row.hash)).resolves.toMatchObject({ url: 'nar/elsewhere.nar' });
          await new NarInfoRepository(other).deleteByHash(row.hash);
          await expect(narinfos.findServedByHash(row.hash)).resolves.toBeNull();
        } finally {
          await other.destroy();
        }
        // On SQLite the lookup runs inside the open transaction (one connection) and sees its row.
        const fresh = narinfo();
        await expect(
          ds.transaction(async (manager) => {
            await new NarInfoRepository(manager).insertIfAbsent(fresh);
            await narinfos.findServedByHash(fresh.hash);
            throw new Error('rolled back');
          }),
        ).rejects.toThrow('rolled back');
        await expect(narinfos.findServedByHash(fresh.hash)).resolves.toBeNull();
      });

      it('insertIfAbsent keeps the row that was there first', async () => {
        const first = narinfo();
        await narinfos.insertIfAbsent(first);

        await narinfos.insertIfAbsent({ ...first, url: 'nar/other.nar.xz', narSize: 1 });

        expect(await narinfos.findByHash(first.hash)).toMatchObject({ url: first.url, narSize: first.narSize });
        await expect(narinfos.count()).resolves.toBe(1);
      });

      it('insertIfAbsent still rejects a row breaking NOT NULL (it is not INSERT IGNORE)', async () => {
        const broken = { ...narinfo(), storePath: null } as unknown as ReturnType<typeof narinfo>;

        await expect(narinfos.insertIfAbsent(broken)).rejects.toThrow();
        await expect(narinfos.count()).resolves.toBe(0);
      });

      it('upsert inserts a new row, then replaces every field but the creation time', async () => {
        const original = narinfo({ createdAt: 1000, lastAccessedAt: 1000 });
        await narinfos.upsert(original);
        const replacement = narinfo({ hash: original.hash, createdAt: 2000, lastAccessedAt: 3000, ca: 'fixed:sha256:abc' });

        await narinfos.upsert(replacement);

        const { id: _id, ...stored } = (await narinfos.findByHash(original.hash))!;
        expect(stored).toEqual({ ...replacement, createdAt: 1000 });
        await expect(narinfos.count()).resolves.toBe(1);
      });

      it('insertManyIfAbsent writes thousands of rows in batches, skipping hashes already there', async () => {
        const existing = narinfo({ url: 'nar/existing.nar.xz' });
        await narinfos.insertIfAbsent(existing);
        const rows = Array.from({ length: 2500 }, () => narinfo());

        await narinfos.insertManyIfAbsent([...rows, { ...existing, url: 'nar/replaced.nar.xz' }, rows[0]]);

        await expect(narinfos.count()).resolves.toBe(2501);
        expect((await narinfos.findByHash(existing.hash))?.url).toBe('nar/existing.nar.xz');
      });

      it('deletes by hash, one or many, and says how many went', async () => {
        const rows = [narinfo(), narinfo(), narinfo()];
        await narinfos.insertManyIfAbsent(rows);

        await expect(narinfos.deleteByHash(rows[0].hash)).resolves.toBe(true);
        await expect(narinfos.deleteByHash(rows[0].hash)).resolves.toBe(false);
        await expect(narinfos.deleteByHashes([rows[1].hash, rows[2].hash, randomHash()])).resolves.toBe(2);
        await expect(narinfos.count()).resolves.toBe(0);
      });

      it('counts the narinfos pointing at a NAR', async () => {
        await narinfos.insertManyIfAbsent([narinfo({ url: 'nar/shared.nar.xz' }), narinfo({ url: 'nar/shared.nar.xz' }), narinfo()]);

        await expect(narinfos.countByUrl('nar/shared.nar.xz')).resolves.toBe(2);
        await expect(narinfos.countByUrl('nar/none.nar.xz')).resolves.toBe(0);
      });

      it('touch sets each hash its own time, only forward, ignoring unknown hashes', async () => {
        const [a, b, c] = [narinfo({ lastAccessedAt: 100 }), narinfo({ lastAccessedAt: 100 }), narinfo({ lastAccessedAt: 5000 })];
        await narinfos.insertManyIfAbsent([a, b, c]);

        await narinfos.touch(
          new Map([
            [a.hash, 2000],
            [b.hash, 3000],
            [c.hash, 4000],
            [randomHash(), 9000],
          ]),
        );

        expect((await narinfos.findByHash(a.hash))?.lastAccessedAt).toBe(2000);
        expect((await narinfos.findByHash(b.hash))?.lastAccessedAt).toBe(3000);
        expect((await narinfos.findByHash(c.hash))?.lastAccessedAt).toBe(5000);
      });

      it('touch writes the hashes of one time together, only forward, whatever their number', async () => {
        const rows = Array.from({ length: 1500 }, (_, i) => narinfo({ lastAccessedAt: i % 3 === 0 ? 9000 : 100 }));
        await narinfos.insertManyIfAbsent(rows);
        const times = new Map<string, number>(rows.map((r) => [r.hash, 5000]));
        times.set(randomHash(), 5000);
        const [odd] = rows;
        times.set(odd.hash, 7000);

        await narinfos.touch(times);

        const expected = (i: number) => (i === 0 ? 9000 : i % 3 === 0 ? 9000 : 5000);
        for (const [i, r] of rows.entries()) {
          if (i % 50 !== 0 && i > 10) continue;
          expect([i, (await narinfos.findByHash(r.hash))?.lastAccessedAt]).toEqual([i, expected(i)]);
        }
        const candidates = await narinfos.findLeastRecentlyUsed(2000);
        expect(candidates.filter((c) => c.lastAccessedAt === 5000)).toHaveLength(1000);
      });

      it('touches 100 000 hashes at once within the driver parameter limits', async () => {
        const rows = Array.from({ length: 50 }, () => narinfo({ lastAccessedAt: 1 }));
        await narinfos.insertManyIfAbsent(rows);
        const times = new Map(Array.from({ length: 100_000 }, (_, i) => [randomHash(), i + 10] as const));
        rows.forEach((r, i) => times.set(r.hash, 1_000_000 + i));

        await narinfos.touch(times);

        for (const [i, r] of rows.entries()) expect((await narinfos.findByHash(r.hash))?.lastAccessedAt).toBe(1_000_000 + i);
      });

      it('findLeastRecentlyUsed lists the oldest first, ties in insertion order, up to the limit', async () => {
        const rows = [
          narinfo({ lastAccessedAt: 30 }),
          narinfo({ lastAccessedAt: 10 }),
          narinfo({ lastAccessedAt: 20 }),
          narinfo({ lastAccessedAt: 10 }),
        ];
        for (const row of rows) await narinfos.insertIfAbsent(row);

        const sut = await narinfos.findLeastRecentlyUsed(3);

        expect(sut).toEqual([rows[1], rows[3], rows[2]].map((r) => ({ hash: r.hash, url: r.url, lastAccessedAt: r.lastAccessedAt })));
        await expect(narinfos.findLeastRecentlyUsed(10)).resolves.toHaveLength(4);
      });

      it('findLeastRecentlyUsedAfter pages in (last access, id) order from a cursor, with References', async () => {
        const rows = [
          narinfo({ lastAccessedAt: 30 }),
          narinfo({ lastAccessedAt: 10 }),
          narinfo({ lastAccessedAt: 20 }),
          narinfo({ lastAccessedAt: 10 }),
          narinfo({ lastAccessedAt: 20 }),
        ];
        for (const row of rows) await narinfos.insertIfAbsent(row);
        const expected = [rows[1], rows[3], rows[2], rows[4], rows[0]].map((r) => ({
          hash: r.hash,
          url: r.url,
          refs: r.refs,
          lastAccessedAt: r.lastAccessedAt,
        }));

        const first = await narinfos.findLeastRecentlyUsedAfter(null, 3);
        const rest = await narinfos.findLeastRecentlyUsedAfter(first[2], 3);

        expect([...first, ...rest].map(({ id: _id, ...r }) => r)).toEqual(expected);
        expect(first.map((r) => typeof r.id)).toEqual(['number', 'number', 'number']);
        await expect(narinfos.findLeastRecentlyUsedAfter(rest[1], 3)).resolves.toEqual([]);
      });

      it('findReferencesOf reads the NAR and References of the stored hashes asked for, in batches', async () => {
        const rows = Array.from({ length: 1200 }, () => narinfo());
        await narinfos.insertManyIfAbsent(rows);

        const sut = await narinfos.findReferencesOf([...rows.map((r) => r.hash), randomHash(), rows[0].hash]);

        expect(sut).toHaveLength(1200);
        expect(sut.find((r) => r.hash === rows[7].hash)).toEqual({ hash: rows[7].hash, url: rows[7].url, refs: rows[7].refs });
        await expect(narinfos.findReferencesOf([])).resolves.toEqual([]);
      });

      it('pageReferencesAfterId passes over every row once, in id order', async () => {
        const rows = Array.from({ length: 5 }, () => narinfo());
        await narinfos.insertManyIfAbsent(rows);

        const first = await narinfos.pageReferencesAfterId(0, 3);
        const rest = await narinfos.pageReferencesAfterId(first[2].id, 3);

        expect([...first, ...rest].map((r) => r.id)).toEqual([...first, ...rest].map((r) => r.id).sort((a, b) => a - b));
        expect(new Map([...first, ...rest].map((r) => [r.hash, r.refs]))).toEqual(new Map(rows.map((r) => [r.hash, r.refs])));
      });

      it('pages through the table by id', async () => {
        await narinfos.insertManyIfAbsent(Array.from({ length: 5 }, () => narinfo()));

        const first = await narinfos.pageAfterId(0, 3);
        const rest = await narinfos.pageAfterId(first[2].id, 3);

        expect(first).toHaveLength(3);
        expect(rest).toHaveLength(2);
        expect(new Set([...first, ...rest].map((r) => r.hash)).size).toBe(5);
      });

      it('20 separate connections inserting the same narinfo at once leave one row and no error', async () => {
        const sources = await openMany(db, 20);
        try {
          const row = narinfo();
          const results = await Promise.allSettled(sources.map((s) => new NarInfoRepository(s).insertIfAbsent(row)));

          expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
          await expect(narinfos.count()).resolves.toBe(1);
        } finally {
          await Promise.all(sources.map((s) => s.destroy()));
        }
      });

      it('20 separate connections upserting the same narinfo at once leave one row and no error', async () => {
        const sources = await openMany(db, 20);
        try {
          const hash = randomHash();
          const rows = sources.map((_, i) => narinfo({ hash, narSize: i }));
          const results = await Promise.allSettled(sources.map((s, i) => new NarInfoRepository(s).upsert(rows[i])));

          expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
          await expect(narinfos.count()).resolves.toBe(1);
        } finally {
          await Promise.all(sources.map((s) => s.destroy()));
        }
      });
    });

    describe('NarFileRepository', () => {
      it('round-trips a NAR file row with a size beyond 2^32', async () => {
        const row = narFile({ fileSize: 2 ** 33 + 1, fileHash: null });

        await narFiles.insertIfAbsent(row);

        const { id: _id, ...stored } = (await narFiles.findByKey(row.key))!;
        expect(stored).toEqual(row);
      });

      it('insertIfAbsent keeps the first row; delete says whether there was one', async () => {
        const row = narFile();
        await narFiles.insertIfAbsent(row);
        await narFiles.insertIfAbsent({ ...row, fileSize: 1 });

        expect((await narFiles.findByKey(row.key))?.fileSize).toBe(row.fileSize);
        await expect(narFiles.deleteByKey(row.key)).resolves.toBe(true);
        await expect(narFiles.deleteByKey(row.key)).resolves.toBe(false);
      });

      it('sums stored bytes beyond 2^32 and counts the files', async () => {
        await expect(narFiles.sumStoredBytes()).resolves.toBe(0);
        await narFiles.insertManyIfAbsent([narFile({ fileSize: 2 ** 32 }), narFile({ fileSize: 2 ** 32 }), narFile({ fileSize: 5 })]);

        await expect(narFiles.sumStoredBytes()).resolves.toBe(2 ** 33 + 5);
        await expect(narFiles.countStored()).resolves.toBe(3);
      });

      it('sums the stored bytes among given keys, each once, beyond 2^32', async () => {
        const files = [narFile({ fileSize: 2 ** 32 }), narFile({ fileSize: 7 }), narFile({ fileSize: 100 })];
        await narFiles.insertManyIfAbsent(files);

        await expect(narFiles.sumStoredBytesAmong([files[0].key, files[1].key, files[0].key, 'nar/none.nar'])).resolves.toBe(2 ** 32 + 7);
        await expect(narFiles.sumStoredBytesAmong([])).resolves.toBe(0);
      });

      it('touch moves access times forward', async () => {
        const [a, b] = [narFile({ lastAccessedAt: 10 }), narFile({ lastAccessedAt: 50 })];
        await narFiles.insertManyIfAbsent([a, b]);

        await narFiles.touch(
          new Map([
            [a.key, 40],
            [b.key, 40],
          ]),
        );

        expect((await narFiles.findByKey(a.key))?.lastAccessedAt).toBe(40);
        expect((await narFiles.findByKey(b.key))?.lastAccessedAt).toBe(50);
      });

      it('findUnreferenced lists NAR files no narinfo points at, oldest first', async () => {
        const files = [
          narFile({ lastAccessedAt: 30 }),
          narFile({ lastAccessedAt: 10 }),
          narFile({ lastAccessedAt: 20 }),
          narFile({ lastAccessedAt: 5 }),
        ];
        await narFiles.insertManyIfAbsent(files);
        await narinfos.insertIfAbsent(narinfo({ url: files[3].key }));

        const sut = await narFiles.findUnreferenced(10);

        expect(sut).toEqual(
          [files[1], files[2], files[0]].map((f) => ({ key: f.key, fileSize: f.fileSize, lastAccessedAt: f.lastAccessedAt })),
        );
        await expect(narFiles.findUnreferenced(1)).resolves.toEqual([expect.objectContaining({ key: files[1].key })]);
      });

      it('findUnreferencedAmong picks, of the keys given, the NAR files no narinfo points at', async () => {
        const files = [narFile({ lastAccessedAt: 30 }), narFile({ lastAccessedAt: 10 }), narFile({ lastAccessedAt: 20 }), narFile()];
        await narFiles.insertManyIfAbsent(files);
        await narinfos.insertIfAbsent(narinfo({ url: files[2].key }));

        const sut = await narFiles.findUnreferencedAmong([files[0].key, files[1].key, files[2].key, 'nar/unknown.nar.xz', files[0].key]);

        expect(sut).toEqual([files[1], files[0]].map((f) => ({ key: f.key, fileSize: f.fileSize, lastAccessedAt: f.lastAccessedAt })));
        await expect(narFiles.findUnreferencedAmong([])).resolves.toEqual([]);
      });

      it('deletes many keys at once', async () => {
        const files = Array.from({ length: 1500 }, () => narFile());
        await narFiles.insertManyIfAbsent(files);

        await expect(narFiles.deleteByKeys(files.slice(0, 1200).map((f) => f.key))).resolves.toBe(1200);
        await expect(narFiles.countStored()).resolves.toBe(300);
      });
    });

    describe('PinRepository', () => {
      it('pins, renews, lists with whether the narinfo is stored, and unpins', async () => {
        const pins = new PinRepository(ds);
        const stored = narinfo();
        await narinfos.insertIfAbsent(stored);
        const waiting = randomHash();

        await pins.pin(stored.hash, 1000, 2000);
        await pins.pin(waiting, 1500, null);
        await pins.pin(stored.hash, 3000, 2 ** 42);

        const listed = await pins.list();
        expect(listed).toEqual(
          [
            { hash: stored.hash, createdAt: 3000, expiresAt: 2 ** 42, stored: true },
            { hash: waiting, createdAt: 1500, expiresAt: null, stored: false },
          ].sort((a, b) => (a.hash < b.hash ? -1 : 1)),
        );
        await expect(pins.unpin(waiting)).resolves.toBe(true);
        await expect(pins.unpin(waiting)).resolves.toBe(false);
        expect((await pins.list()).map((p) => p.hash)).toEqual([stored.hash]);
      });

      it('finds the pins in force and deletes the expired ones', async () => {
        const pins = new PinRepository(ds);
        const [forever, later, now] = [randomHash(), randomHash(), randomHash()];
        await pins.pin(forever, 1, null);
        await pins.pin(later, 1, 5001);
        await pins.pin(now, 1, 5000);

        expect((await pins.findActiveHashes(5000)).sort()).toEqual([forever, later].sort());
        await expect(pins.deleteExpired(5000)).resolves.toBe(1);
        expect((await pins.list()).map((p) => p.hash).sort()).toEqual([forever, later].sort());
      });
    });

    describe('ConfigRepository', () => {
      it('gets nothing for an unknown key, stores a first value and keeps it', async () => {
        await expect(config.get('secret-key')).resolves.toBeNull();

        await expect(config.getOrInsert('secret-key', 'first')).resolves.toBe('first');
        await expect(config.getOrInsert('secret-key', 'second')).resolves.toBe('first');
      });

      it('set replaces a value; all lists entries in key order', async () => {
        await config.set('b', 'one');
        await config.set('b', 'two');
        await config.set('a', 'x'.repeat(100_000));

        await expect(config.all()).resolves.toEqual([
          { key: 'a', value: 'x'.repeat(100_000) },
          { key: 'b', value: 'two' },
        ]);
      });

      it('getOrInsert raced from 20 connections gives every one the same winner', async () => {
        const sources = await openMany(db, 20);
        try {
          const values = await Promise.all(sources.map((s, i) => new ConfigRepository(s).getOrInsert('secret-key', `key-${i}`)));

          expect(new Set(values).size).toBe(1);
          await expect(config.get('secret-key')).resolves.toBe(values[0]);
        } finally {
          await Promise.all(sources.map((s) => s.destroy()));
        }
      });
    });

    describe('NarDownloadRepository', () => {
      it('announces, refreshes, finds the live announcement and withdraws only its own', async () => {
        const downloads = new NarDownloadRepository(ds);
        await downloads.announce('nar/a.nar.xz', 'http://one:8501', 100, 1000);
        await downloads.announce('nar/a.nar.xz', 'http://two:8501', 200, 2000);

        await expect(downloads.findActive('nar/a.nar.xz', 1500)).resolves.toEqual({
          key: 'nar/a.nar.xz',
          ownerUrl: 'http://two:8501',
          startedAt: 200,
          expiresAt: 2000,
        });
        await expect(downloads.findActive('nar/a.nar.xz', 2000)).resolves.toBeNull();
        await downloads.withdraw('nar/a.nar.xz', 'http://one:8501');
        await expect(downloads.findActive('nar/a.nar.xz', 0)).resolves.not.toBeNull();
        await downloads.withdraw('nar/a.nar.xz', 'http://two:8501');
        await expect(downloads.findActive('nar/a.nar.xz', 0)).resolves.toBeNull();
      });

      it('20 connections announcing the same download at once leave one row and no error', async () => {
        const sources = await openMany(db, 20);
        try {
          const results = await Promise.allSettled(
            sources.map((s, i) => new NarDownloadRepository(s).announce('nar/b.nar.xz', `http://i${i}:8501`, i, 10_000 + i)),
          );

          expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
          expect(Number((await ds.query(`SELECT COUNT(*) AS n FROM nar_downloads`))[0].n)).toBe(1);
        } finally {
          await Promise.all(sources.map((s) => s.destroy()));
        }
      });
    });

    describe('NegativeNarInfoRepository', () => {
      it('remembers, moves, reads back (expired or not), forgets, and sweeps only what expired', async () => {
        const misses = new NegativeNarInfoRepository(ds);
        const [a, b, c] = [randomHash(), randomHash(), randomHash()];
        await misses.remember(a, 1_000);
        await misses.remember(a, 2 ** 41 + 3); // moved, beyond 2^32
        await misses.remember(b, 1_500);
        await misses.remember(c, 1_501);

        await expect(misses.expiryOf(a)).resolves.toBe(2 ** 41 + 3);
        await expect(misses.expiryOf(b)).resolves.toBe(1_500);
        await expect(misses.expiryOf(randomHash())).resolves.toBeNull();
        await expect(misses.sweepExpired(1_500)).resolves.toBe(1);
        await expect(misses.expiryOf(b)).resolves.toBeNull();
        await expect(misses.expiryOf(c)).resolves.toBe(1_501);
        await expect(misses.forget(a)).resolves.toBe(true);
        await expect(misses.forget(a)).resolves.toBe(false);
        await expect(misses.expiryOf(a)).resolves.toBeNull();
        expect(Number((await ds.query(`SELECT COUNT(*) AS n FROM negative_narinfos`))[0].n)).toBe(1);
      });

      it('20 connections remembering the same miss at once leave one row, with one of their expiries, and no error', async () => {
        const sources = await openMany(db, 20);
        const hash = randomHash();
        try {
          const results = await Promise.allSettled(sources.map((s, i) => new NegativeNarInfoRepository(s).remember(hash, 10_000 + i)));

          expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
          expect(Number((await ds.query(`SELECT COUNT(*) AS n FROM negative_narinfos`))[0].n)).toBe(1);
          expect(await new NegativeNarInfoRepository(ds).expiryOf(hash)).toBeGreaterThanOrEqual(10_000);
        } finally {
          await Promise.all(sources.map((s) => s.destroy()));
        }
      });
    });
  });
}
