import { DataSource } from 'typeorm';
import { DatabaseConfig } from 'src/config/config';
import { databaseDialect } from 'src/config/build-config';
import { ConfigError } from 'src/config/option';
import { createDataSource } from './data-source';
import { PinEntity } from './entities';
import { applyMigrations, pendingMigrations } from './migrate';
import { ArtifactRepository } from './repositories/artifact.repository';
import { ConfigRepository } from './repositories/config.repository';
import { NarFileRepository } from './repositories/nar-file.repository';
import { NarInfoRepository } from './repositories/narinfo.repository';
import { redactUrl } from './url/redact-url';

export interface MigrateDatabaseOptions {
  /** Progress lines (URLs in them are redacted). */
  log?: (message: string) => void;
  /** Rows read and written per statement; 1000 by default. */
  batchSize?: number;
}

export type CopiedTable = 'config' | 'nar_files' | 'narinfos' | 'pins' | 'artifacts';
export type MigrateDatabaseReport = Record<CopiedTable, { source: number; target: number }>;

/** A copy needs few connections: one reader, one writer, one for the migration lock. */
const POOL = { poolMaxOpen: 2, poolMaxIdle: 1 };

/**
 * `ncps migrate-database --from URL --to URL`: copies all metadata (config including the signing
 * key, NAR files, narinfos with their references and signatures, pins, artifacts) from one database to another of
 * any dialect. The target's schema is migrated first. Rows are copied in id order, in batches,
 * inserted unless their natural key (hash, key) is already there, so running it again after an
 * interruption completes the copy. Config entries are the exception: the source's value replaces
 * the target's, because a target that generated its own signing key must take over the source's.
 * nar_downloads is not copied: it announces downloads running now, which a copy cannot carry over.
 * Ends by comparing row counts, and throws if the target has fewer rows than the source.
 */
export async function migrateDatabase(
  from: string | DatabaseConfig,
  to: string | DatabaseConfig,
  opts: MigrateDatabaseOptions = {},
): Promise<MigrateDatabaseReport> {
  const log = opts.log ?? (() => undefined);
  const batchSize = opts.batchSize ?? 1000;
  const source = createDataSource(asConfig(from));
  const target = createDataSource(asConfig(to));
  log(`copying ${redactUrl(asConfig(from).url)} to ${redactUrl(asConfig(to).url)}`);
  await source.initialize();
  try {
    await target.initialize();
    try {
      const { pending } = await pendingMigrations(source);
      if (pending.length > 0) {
        throw new Error(`the source database has unapplied migrations (${pending.join(', ')}); run ncps migrate up on it first`);
      }
      const applied = await applyMigrations(target);
      if (applied.length > 0) log(`target schema: applied ${applied.join(', ')}`);
      await copy(source, target, batchSize, log);
      return await verify(source, target, log);
    } finally {
      await target.destroy();
    }
  } finally {
    await source.destroy();
  }
}

async function copy(source: DataSource, target: DataSource, batchSize: number, log: (m: string) => void): Promise<void> {
  const entries = await new ConfigRepository(source).all();
  const targetConfig = new ConfigRepository(target);
  for (const { key, value } of entries) await targetConfig.set(key, value);
  log(`config: ${entries.length} entries copied`);

  await copyById('nar_files', new NarFileRepository(source), new NarFileRepository(target), batchSize, log);
  await copyById('narinfos', new NarInfoRepository(source), new NarInfoRepository(target), batchSize, log);
  await copyArtifacts(new ArtifactRepository(source), new ArtifactRepository(target), batchSize, log);

  // A few rows, set by operators: copied whole, a pin already in the target taking the source's expiry.
  const pins = await source.getRepository(PinEntity).find({ order: { hash: 'ASC' } });
  if (pins.length > 0) await target.getRepository(PinEntity).upsert(pins, ['hash']);
  log(`pins: ${pins.length} copied`);
}

/** As copyById, with the path (the table's key) as the cursor. */
async function copyArtifacts(from: ArtifactRepository, to: ArtifactRepository, batchSize: number, log: (m: string) => void): Promise<void> {
  let copied = 0;
  for (let afterPath = ''; ;) {
    const page = await from.pageAfterPath(afterPath, batchSize);
    if (page.length === 0) break;
    await to.insertManyIfAbsent(page);
    afterPath = page[page.length - 1].path;
    copied += page.length;
    log(`artifacts: ${copied} rows copied`);
  }
}

interface CopyableRepository<Row extends { id: number }> {
  pageAfterId(afterId: number, limit: number): Promise<Row[]>;
  insertManyIfAbsent(rows: ReadonlyArray<Omit<Row, 'id'>>): Promise<void>;
}

async function copyById<Row extends { id: number }>(
  table: CopiedTable,
  from: CopyableRepository<Row>,
  to: CopyableRepository<Row>,
  batchSize: number,
  log: (m: string) => void,
): Promise<void> {
  let copied = 0;
  for (let afterId = 0; ;) {
    const page = await from.pageAfterId(afterId, batchSize);
    if (page.length === 0) break;
    // Ids are the target's own; rows are matched by their natural key.
    await to.insertManyIfAbsent(page.map(({ id: _id, ...row }) => row));
    afterId = page[page.length - 1].id;
    copied += page.length;
    log(`${table}: ${copied} rows copied`);
  }
}

async function verify(source: DataSource, target: DataSource, log: (m: string) => void): Promise<MigrateDatabaseReport> {
  const counts = async (ds: DataSource) => ({
    config: (await new ConfigRepository(ds).all()).length,
    nar_files: await new NarFileRepository(ds).countStored(),
    narinfos: await new NarInfoRepository(ds).count(),
    pins: await ds.getRepository(PinEntity).count(),
    artifacts: await new ArtifactRepository(ds).count(),
  });
  const [s, t] = await Promise.all([counts(source), counts(target)]);
  const report = {} as MigrateDatabaseReport;
  for (const table of ['config', 'nar_files', 'narinfos', 'pins', 'artifacts'] as const) {
    report[table] = { source: s[table], target: t[table] };
    log(`${table}: ${s[table]} rows in the source, ${t[table]} in the target`);
  }
  const short = Object.entries(report).filter(([, c]) => c.target < c.source);
  if (short.length > 0) {
    throw new Error(
      `the target has fewer rows than the source: ${short.map(([table, c]) => `${table} ${c.target} < ${c.source}`).join(', ')}`,
    );
  }
  return report;
}

function asConfig(database: string | DatabaseConfig): DatabaseConfig {
  if (typeof database !== 'string') return database;
  try {
    return { url: database, dialect: databaseDialect(database), ...POOL };
  } catch {
    throw new ConfigError(`database URL ${redactUrl(database)}: scheme must be sqlite:, postgres://, postgresql:// or mysql://`);
  }
}
