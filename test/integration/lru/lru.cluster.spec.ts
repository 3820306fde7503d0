import { randomBytes } from 'node:crypto';
import { DataSource } from 'typeorm';
import { NarFileRepository, NarInfoRepository } from 'src/database';
import { deleteRedisKeys } from 'test/support/lock-services';
import { TestDatabase, createTestDatabase, openDataSource } from 'test/support/databases';
import { S3rverHandle, startS3rver } from 'test/support/s3rver';
import { LogLine, NcpsInstance } from './lru.instance';
import { SlowReader, makeNar, putNar, putNarInfo, sha256Of, status, uploadPath } from './lru.fixtures';
import { until } from 'test/support/wait';

const KIB = 1024;
const MIB = 1024 * KIB;
const LIMIT = 2 * MIB;
const ROUND_MS = 2000;
/** Far larger than the socket buffers on the way (s3rver → instance → client), so the read stays open. */
const BIG = 32 * MIB;
const SMALL = 256 * KIB;

interface Outcome {
  instance: string;
  /** When the run started (or was skipped). */
  start: number;
  end: number;
  evicted: boolean;
  skipped: boolean;
}

/**
 * Three `ncps serve` processes sharing PostgreSQL, S3 (s3rver) and Redis locks, each with the LRU on a
 * two-second schedule: every round all three try the LRU lock, one runs, the others log that another
 * instance is running LRU.
 */
describe('LRU on a schedule across 3 instances', () => {
  let database: TestDatabase;
  let s3: S3rverHandle;
  let keyPrefix: string;
  let instances: NcpsInstance[] = [];
  let ds: DataSource;
  let narFiles: NarFileRepository;
  let narInfos: NarInfoRepository;

  beforeAll(async () => {
    [database, s3] = await Promise.all([createTestDatabase('postgres'), startS3rver()]);
    keyPrefix = `ncps:lrutest:${randomBytes(4).toString('hex')}:`;
    const flags = [
      `--cache-database-url=${database.url}`,
      `--cache-storage-s3-bucket=${s3.bucket}`,
      `--cache-storage-s3-endpoint=${s3.endpoint}`,
      '--cache-storage-s3-region=us-east-1',
      '--cache-storage-s3-access-key-id=S3RVER',
      '--cache-storage-s3-secret-access-key=S3RVER',
      '--cache-storage-s3-force-path-style=true',
      '--cache-lock-backend=redis',
      '--cache-redis-addrs=127.0.0.1:6379',
      `--cache-lock-redis-key-prefix=${keyPrefix}`,
      '--cache-upstream-url=',
      '--cache-hostname=lru-test',
      '--cache-allow-put-verb=true',
      `--cache-max-size=${LIMIT}`,
      '--cache-lru-schedule=*/2 * * * * *',
      '--log-level=info',
    ];
    instances = await Promise.all(['a', 'b', 'c'].map((name) => NcpsInstance.start(name, flags)));
    ds = await openDataSource(database.config, { migrate: false });
    narFiles = new NarFileRepository(ds);
    narInfos = new NarInfoRepository(ds);
  }, 60_000);

  afterAll(async () => {
    await Promise.all(instances.map((instance) => instance.stop()));
    await ds?.destroy();
    await Promise.all([database?.drop(), s3?.stop(), keyPrefix && deleteRedisKeys(keyPrefix)]);
  });

  function outcomes(): Outcome[] {
    return instances.flatMap((instance) => [
      ...instance.logged('LRU run finished').map((line: LogLine) => ({
        instance: instance.name,
        start: line.time - Number(line.duration_ms),
        end: line.time,
        evicted: Number(line.evicted_entries) + Number(line.evicted_nar_files) > 0,
        skipped: false,
      })),
      ...instance.logged('another instance is running LRU').map((line: LogLine) => ({
        instance: instance.name,
        start: line.time,
        end: line.time,
        evicted: false,
        skipped: true,
      })),
    ]);
  }

  it('waits for a client streaming a NAR on another instance, which receives it whole', async () => {
    const [a, b, c] = instances;
    const nar = makeNar(BIG);
    await putNar(a.url, nar);
    const reader = new SlowReader(`${b.url}/${nar.url}`);
    await reader.firstBytes();

    // The narinfo makes the NAR evictable: the next round's LRU deletes it, then waits for the reader.
    const hash = await putNarInfo(c.url, nar);
    await until('the LRU deleted the narinfo', async () => (await narInfos.findByHash(hash)) === null);
    // Instead of sleeping for two rounds: wait until the other two instances skipped two later rounds
    // (the LRU lock is held meanwhile), then the NAR must still be there.
    const deletedAt = Date.now();
    const laterSkips = () =>
      outcomes().filter((o) => o.skipped && o.start > deletedAt + 500 && Math.floor(o.start / ROUND_MS) > Math.floor(deletedAt / ROUND_MS));
    await until('two later rounds were skipped', () => laterSkips().length >= 4);
    expect(await narFiles.findByKey(nar.url)).not.toBeNull();

    reader.resume();
    const body = await reader.done;
    expect(body.length).toBe(BIG);
    expect(sha256Of(body)).toBe(sha256Of(nar.body));

    const evictions = () => instances.flatMap((instance) => instance.logged('LRU run finished')).filter((l) => l.evicted_nar_files === 1);
    await until('the NAR is evicted', async () => evictions().length > 0);
    expect(await narFiles.findByKey(nar.url)).toBeNull();
    expect(await status(`${a.url}/${nar.url}`)).toBe(404);
    expect(evictions()).toHaveLength(1);
    const [eviction] = evictions();
    expect(eviction).toMatchObject({ evicted_entries: 1, evicted_bytes: BIG, size_after: 0 });
    expect(Number(eviction.duration_ms)).toBeGreaterThan(2 * ROUND_MS);
    // It held the LRU lock while it waited: the other two skipped the (at least two) rounds in between.
    const waited = { start: eviction.time - Number(eviction.duration_ms), end: eviction.time };
    const skippedMeanwhile = outcomes().filter((o) => o.skipped && o.start > waited.start + 500 && o.end < waited.end);
    expect(skippedMeanwhile.length).toBeGreaterThanOrEqual(4);
  });

  it('evicts the least recently used in exactly one instance once an upload takes the cache over its limit', async () => {
    const [a, b, c] = instances;
    // Exactly at the limit: nothing to evict.
    const hashes: string[] = [];
    for (let i = 0; i < LIMIT / SMALL; i++) hashes.push(await uploadPath(instances[i % 3].url, makeNar(SMALL)));
    // Instead of sleeping for a round: wait until a run that started after the uploads has finished.
    const uploaded = Date.now();
    await until('a round ran after the uploads', () => outcomes().some((o) => !o.skipped && o.start > uploaded));
    expect(await narFiles.sumStoredBytes()).toBe(LIMIT);

    // One NAR row takes the cache over the limit at once, so the first run after it does all the work.
    const last = makeNar(4 * SMALL);
    await putNar(b.url, last);
    await putNarInfo(c.url, last);

    await until('the cache is within its limit', async () => (await narFiles.sumStoredBytes()) <= LIMIT);
    expect(await narFiles.sumStoredBytes()).toBe(LIMIT);
    const statuses = await Promise.all(hashes.map((hash) => status(`${a.url}/${hash}.narinfo`)));
    expect(statuses).toEqual([404, 404, 404, 404, 200, 200, 200, 200]);
  });

  it('evicted in exactly one instance per round, the others being told another instance was running LRU', async () => {
    // Rounds after the last eviction: nobody evicts once the cache is within its limit. Instead of
    // sleeping for two rounds, wait until two runs that started from now on have finished.
    const from = Date.now();
    await until('two more rounds ran', () => outcomes().filter((o) => !o.skipped && o.start > from).length >= 2);
    const rounds = new Map<number, Outcome[]>();
    for (const outcome of outcomes()) {
      const round = Math.floor(outcome.start / ROUND_MS);
      rounds.set(round, [...(rounds.get(round) ?? []), outcome]);
    }
    const evictingRounds = [...rounds.values()].filter((round) => round.some((o) => o.evicted));
    expect(evictingRounds).toHaveLength(2);
    for (const round of evictingRounds) expect(round.filter((o) => o.evicted)).toHaveLength(1);
    expect(outcomes().some((o) => o.skipped)).toBe(true);
  });
});
