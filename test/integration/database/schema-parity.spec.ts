import { DataSource } from 'typeorm';
import { ENTITIES } from 'src/database/entities';
import { TEST_DIALECTS, TestDatabase, createTestDatabase, openDataSource } from 'test/support/databases';
import { TableShape, describeTable } from './schema-introspection';

const TABLES = ['narinfos', 'nar_files', 'config', 'nar_downloads', 'pins', 'negative_narinfos', 'artifacts'];

/**
 * The migrations of the three dialects must build the same logical schema: same tables, columns,
 * type families, nullability, primary keys and indexes. SQLite is the reference; the entities, which
 * every dialect shares, must fit it too.
 */
describe('schema parity across SQLite, PostgreSQL and MySQL', () => {
  const shapes: Record<string, Record<string, TableShape>> = {};
  const opened: Array<{ db: TestDatabase; ds: DataSource }> = [];

  beforeAll(async () => {
    await Promise.all(
      TEST_DIALECTS.map(async (dialect) => {
        const db = await createTestDatabase(dialect);
        const ds = await openDataSource(db.config);
        opened.push({ db, ds });
        shapes[dialect] = {};
        for (const table of TABLES) shapes[dialect][table] = await describeTable(ds, table);
      }),
    );
  });

  afterAll(async () => {
    for (const { db, ds } of opened) {
      await ds.destroy();
      await db.drop();
    }
  });

  it('reads a schema worth comparing', () => {
    const narinfos = shapes.sqlite.narinfos;

    expect(Object.keys(narinfos.columns)).toHaveLength(19);
    expect(narinfos.columns.verified).toEqual({ type: 'bool', nullable: false });
    expect(narinfos.columns.hash).toEqual({ type: 'varchar(32)', nullable: false });
    expect(narinfos.columns.file_size).toEqual({ type: 'int64', nullable: true });
    expect(narinfos.primaryKey).toEqual(['id']);
    expect(narinfos.indexes).toEqual({
      idx_narinfos_hash: { columns: ['hash'], unique: true },
      idx_narinfos_url: { columns: ['url'], unique: false },
      idx_narinfos_last_accessed_at: { columns: ['last_accessed_at'], unique: false },
    });
    expect(shapes.sqlite.config.primaryKey).toEqual(['key']);
    expect(shapes.sqlite.nar_downloads.primaryKey).toEqual(['key']);
  });

  it.each(['postgres', 'mysql'])('%s has the same tables, columns, keys and indexes as SQLite', (dialect) => {
    expect(shapes[dialect]).toEqual(shapes.sqlite);
  });

  it.each(TABLES)('the entity of %s names exactly its columns, with the same nullability', (table) => {
    const entity = ENTITIES.map((e) => opened[0].ds.getMetadata(e)).find((m) => m.tableName === table)!;
    const fromEntity = Object.fromEntries(entity.columns.map((c) => [c.databaseName, c.isNullable]));
    const fromSchema = Object.fromEntries(Object.entries(shapes.sqlite[table].columns).map(([name, c]) => [name, c.nullable]));

    expect(fromEntity).toEqual(fromSchema);
  });
});
