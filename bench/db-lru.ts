/**
 * The LRU's queries on a large table, per dialect: fills a fresh database with ROWS narinfos and as
 * many NAR files (1 in 100 NAR files unreferenced, scattered in time), then times sumStoredBytes,
 * findLeastRecentlyUsed(1000), findUnreferenced(1000), findUnreferencedAmong(the URLs of those 1000)
 * and a touch of 10 000 hashes (median of 5 runs, after one warm-up), and prints each query's plan
 * so index use can be checked.
 * Run by hand: `node dist/bench/db-lru.js [rows=1000000] [dialects=sqlite,postgres,mysql]` after
 * `npm run build`. Uses the test services (test/support/databases.ts); each dialect gets a database
 * of its own, dropped at the end.
 */
import { randomBytes } from 'node:crypto';
import { DataSource, Logger } from 'typeorm';
import { DatabaseDialect } from 'src/config/config';
import { NarFileRepository, NarInfoRepository, NewNarFile, NewNarInfo, applyMigrations } from 'src/database';
import { dataSourceOptions } from 'src/database/data-source';
import { createTestDatabase } from 'test/support/databases';

const CHUNK = 10_000;
const RUNS = 5;

interface Result {
  dialect: DatabaseDialect;
  rows: number;
  insertS: number;
  sumMs: number;
  lruMs: number;
  unreferencedMs: number;
  amongMs: number;
  touchMs: number;
  plans: Record<string, string>;
}

/** Remembers the last statement the data source ran, so the bench can EXPLAIN exactly that. */
class LastQuery implements Logger {
  sql = '';
  params: unknown[] = [];
  logQuery(sql: string, params?: unknown[]) {
    this.sql = sql;
    this.params = params ?? [];
  }
  logQueryError() {}
  logQuerySlow() {}
  logSchemaBuild() {}
  logMigration() {}
  log() {}
}

const hashOf = (i: number) => i.toString(32).padStart(32, '0');
const keyOf = (i: number) => `nar/${hashOf(i)}${randomBytes(4).toString('hex')}.nar.zst`;

async function fill(narinfos: NarInfoRepository, narFiles: NarFileRepository, rows: number): Promise<void> {
  const base = 1_700_000_000_000;
  for (let start = 0; start < rows; start += CHUNK) {
    const files: NewNarFile[] = [];
    const infos: NewNarInfo[] = [];
    for (let i = start; i < Math.min(rows, start + CHUNK); i++) {
      // Access times shuffled against insertion order, so neither query can lean on the id order.
      const accessed = base + ((i * 7919) % rows) * 1000;
      const key = keyOf(i);
      files.push({
        key,
        compression: 'zstd',
        fileSize: 50_000 + (i % 1000) * 1000,
        fileHash: null,
        createdAt: base,
        lastAccessedAt: accessed,
      });
      infos.push({
        hash: hashOf(i),
        storePath: `/nix/store/${hashOf(i)}-package-${i}`,
        url: i % 100 === 0 ? `nar/gone-${i}.nar.zst` : key,
        compression: 'zstd',
        fileHash: `sha256:${hashOf(i)}${hashOf(i).slice(0, 20)}`,
        fileSize: 50_000,
        narHash: `sha256:${hashOf(i)}${hashOf(i).slice(0, 20)}`,
        narSize: 200_000,
        refs: `${hashOf(i + 1)}-dep ${hashOf(i + 2)}-dep`,
        deriver: `${hashOf(i)}-package.drv`,
        system: 'x86_64-linux',
        ca: null,
        sigs: 'cache.example.org-1:c2ln',
        upstreamUrl: 'https://cache.nixos.org',
        upstreamNarUrl: null,
        verified: true,
        createdAt: base,
        lastAccessedAt: accessed,
      });
    }
    await narFiles.insertManyIfAbsent(files);
    await narinfos.insertManyIfAbsent(infos);
  }
}

async function median(work: () => Promise<unknown>): Promise<number> {
  await work();
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const start = process.hrtime.bigint();
    await work();
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  return times.sort((a, b) => a - b)[Math.floor(RUNS / 2)];
}

async function explain(ds: DataSource, dialect: DatabaseDialect, last: LastQuery): Promise<string> {
  const { sql, params } = last;
  switch (dialect) {
    case 'sqlite':
      return (await ds.query<{ detail: string }[]>(`EXPLAIN QUERY PLAN ${sql}`, params)).map((r) => r.detail).join('; ');
    case 'postgres':
      // PostgreSQL prints bound parameters in the plan: shorten the list of 1000 keys.
      return (await ds.query<{ 'QUERY PLAN': string }[]>(`EXPLAIN ${sql}`, params))
        .map((r) => r['QUERY PLAN'].trim().replace(/'\{[^}]*\}'/g, "'{...}'"))
        .join('; ');
    case 'mysql':
      return (await ds.query<Record<string, string | number | null>[]>(`EXPLAIN ${sql}`, params))
        .map((r) => `${r.table}: type=${r.type} key=${r.key} rows=${r.rows} ${r.Extra ?? ''}`.trim())
        .join('; ');
  }
}

async function bench(dialect: DatabaseDialect, rows: number): Promise<Result> {
  const db = await createTestDatabase(dialect, { poolMaxOpen: 4 });
  const last = new LastQuery();
  const ds = new DataSource({ ...dataSourceOptions(db.config), logging: ['query'], logger: last });
  try {
    await ds.initialize();
    await applyMigrations(ds);
    const narinfos = new NarInfoRepository(ds);
    const narFiles = new NarFileRepository(ds);

    const started = Date.now();
    await fill(narinfos, narFiles, rows);
    const insertS = (Date.now() - started) / 1000;
    // What autovacuum / a DBA would have done by the time a table is this big.
    await ds.query(dialect === 'mysql' ? 'ANALYZE TABLE narinfos, nar_files' : 'ANALYZE');

    const plans: Record<string, string> = {};
    const measure = async (name: string, work: () => Promise<unknown>) => {
      const ms = await median(work);
      plans[name] = await explain(ds, dialect, last);
      return ms;
    };
    const sumMs = await measure('sumStoredBytes', () => narFiles.sumStoredBytes());
    const lruMs = await measure('findLeastRecentlyUsed(1000)', () => narinfos.findLeastRecentlyUsed(1000));
    const unreferencedMs = await measure('findUnreferenced(1000)', () => narFiles.findUnreferenced(1000));
    const urls = (await narinfos.findLeastRecentlyUsed(1000)).map((c) => c.url);
    const amongMs = await measure('findUnreferencedAmong(1000 keys)', () => narFiles.findUnreferencedAmong(urls));
    const touched = new Map(Array.from({ length: 10_000 }, (_, i) => [hashOf((i * 97) % rows), Date.now()] as const));
    const touchMs = await median(() => narinfos.touch(touched));
    return { dialect, rows, insertS, sumMs, lruMs, unreferencedMs, amongMs, touchMs, plans };
  } finally {
    if (ds.isInitialized) await ds.destroy();
    await db.drop();
  }
}

export async function runDbLruBench(rows: number, dialects: DatabaseDialect[]): Promise<Result[]> {
  const results: Result[] = [];
  for (const dialect of dialects) {
    process.stderr.write(`${dialect}: filling ${rows} rows...\n`);
    results.push(await bench(dialect, rows));
  }
  const fmt = (ms: number) => ms.toFixed(1);
  console.log(
    '| dialect | rows | insert (narinfos + nar_files) | sumStoredBytes | findLeastRecentlyUsed(1000) | findUnreferenced(1000) | findUnreferencedAmong(1000 keys) | touch(10 000) |',
  );
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of results) {
    console.log(
      `| ${r.dialect} | ${r.rows} | ${r.insertS.toFixed(1)} s | ${fmt(r.sumMs)} ms | ${fmt(r.lruMs)} ms | ${fmt(r.unreferencedMs)} ms | ${fmt(r.amongMs)} ms | ${fmt(r.touchMs)} ms |`,
    );
  }
  for (const r of results) {
    console.log(`\n${r.dialect} plans:`);
    for (const [query, plan] of Object.entries(r.plans)) console.log(`  ${query}: ${plan}`);
  }
  return results;
}

if (require.main === module) {
  const rows = Number(process.argv[2] ?? 1_000_000);
  const dialects = (process.argv[3] ?? 'sqlite,postgres,mysql').split(',') as DatabaseDialect[];
  runDbLruBench(rows, dialects).catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
