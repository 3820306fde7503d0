import { DataSource } from 'typeorm';
import { NarInfoRepository } from 'src/database';
import { TestDatabase, createTestDatabase, openDataSource } from 'test/support/databases';
import { narinfo, randomHash } from './fixtures';
import { repositoryConformance } from './repository.conformance';

repositoryConformance('sqlite');

interface Statement {
  readonly source: string;
  run(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown;
}

/** What the hot lookups of SQLite cost in statements: see prepared-query.ts. */
describe('SQLite lookups, turn by turn', () => {
  let db: TestDatabase;
  let ds: DataSource;
  beforeAll(async () => {
    db = await createTestDatabase('sqlite');
    ds = await openDataSource(db.config);
  });
  afterAll(async () => {
    await ds?.destroy();
    await db?.drop();
  });

  it('read the version alone when the memo answers every lookup, and share one transaction between several', async () => {
    const narinfos = new NarInfoRepository(ds);
    const [a, b] = [narinfo(), narinfo()];
    await narinfos.insertManyIfAbsent([a, b]);
    const connection = (ds.driver as unknown as { databaseConnection: { prepare(sql: string): Statement } }).databaseConnection;
    const statements = Object.getPrototypeOf(connection.prepare('SELECT 1')) as Statement;
    const ran: string[] = [];
    const named = (source: string) => (source.includes('narinfos') ? 'lookup' : source);
    const spies = (['run', 'all'] as const).map((method) => {
      const original = statements[method];
      return jest.spyOn(statements, method).mockImplementation(function (this: Statement, ...params: unknown[]) {
        ran.push(named(this.source));
        return original.apply(this, params);
      });
    });
    const turn = async (...hashes: string[]) => {
      ran.length = 0;
      const rows = await Promise.all(hashes.map((hash) => narinfos.findServedByHash(hash)));
      return { rows: rows.map((row) => row?.url ?? null), ran: [...ran] };
    };
    try {
      const version = ['SELECT total_changes()', 'PRAGMA data_version'];
      expect(await turn(a.hash, b.hash)).toEqual({ rows: [a.url, b.url], ran: [...version, 'BEGIN', 'lookup', 'lookup', 'COMMIT'] });
      expect(await turn(a.hash, b.hash)).toEqual({ rows: [a.url, b.url], ran: version });
      const unknown = randomHash();
      expect(await turn(a.hash, unknown)).toEqual({ rows: [a.url, null], ran: [...version, 'lookup'] });
      // A write moves the version: nothing remembered is served.
      await narinfos.upsert({ ...a, url: 'nar/changed.nar' });
      expect(await turn(a.hash)).toEqual({ rows: ['nar/changed.nar'], ran: [...version, 'lookup'] });
    } finally {
      for (const spy of spies) spy.mockRestore();
    }
  });
});
