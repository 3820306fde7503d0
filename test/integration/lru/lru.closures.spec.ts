import { DatabaseDialect } from 'src/config/config';
import { NarInfoRepository } from 'src/database';
import { LruService } from 'src/lru';
import { PinsService } from 'src/pins';
import { serializeNarInfo } from 'src/nix';
import { RunningApp, startApp } from 'test/support/app';
import { TestDatabase, createTestDatabase } from 'test/support/databases';
import { TestNar, makeNar, makeStorePathHash, putNar, status } from './lru.fixtures';

const SIZE = 16 * 1024;

interface Path {
  hash: string;
  nar: TestNar;
}

/** Uploads a NAR and its narinfo, whose References name `refs` (as `nix copy` would upload a path). */
async function upload(base: string, refs: Path[] = []): Promise<Path> {
  const path = { hash: makeStorePathHash(), nar: makeNar(SIZE) };
  await putNar(base, path.nar);
  const text = serializeNarInfo({
    storePath: `/nix/store/${path.hash}-closure-test`,
    url: path.nar.url,
    compression: 'none',
    fileHash: path.nar.sha256,
    fileSize: SIZE,
    narHash: path.nar.sha256,
    narSize: SIZE,
    references: [`${path.hash}-closure-test`, ...refs.map((r) => `${r.hash}-closure-test`)],
    sigs: [],
  });
  const res = await fetch(`${base}/${path.hash}.narinfo`, { method: 'PUT', body: text });
  if (res.status !== 204) throw new Error(`PUT narinfo: ${res.status} ${await res.text()}`);
  return path;
}

async function uploadMany(base: string, count: number): Promise<Path[]> {
  const paths: Path[] = [];
  for (let i = 0; i < count; i++) paths.push(await upload(base));
  return paths;
}

/**
 * Pins and closure-aware eviction, through the real application on each database: the LRU keeps a
 * pinned closure while everything else goes, lets it go once unpinned, and keeps a closure whose top
 * was read recently while older unrelated paths go. Uploads happen in order, so the order of last
 * access is the upload order (ties within a second fall back to insertion order).
 */
describe.each<DatabaseDialect>(['sqlite', 'postgres', 'mysql'])('LRU with closures and pins on %s', (dialect) => {
  let db: TestDatabase | undefined;
  let server: RunningApp;
  /** Whether the narinfo and the NAR of a path are still served. */
  const present = async (path: Path) => ({
    narinfo: await status(`${server.url}/${path.hash}.narinfo`),
    nar: await status(`${server.url}/${path.nar.url}`),
  });
  const expectPresent = async (paths: Path[], served: boolean) => {
    const code = served ? 200 : 404;
    for (const path of paths) expect(await present(path)).toEqual({ narinfo: code, nar: code });
  };

  beforeAll(async () => {
    db = dialect === 'sqlite' ? undefined : await createTestDatabase(dialect);
    server = await startApp({
      'cache-allow-put-verb': 'true',
      'cache-max-size': String(3 * SIZE),
      ...(db ? { 'cache-database-url': db.url } : {}),
    });
  });

  afterAll(async () => {
    await server?.close();
    await db?.drop();
  });

  let closure: Path[];

  it('keeps a pinned closure (A → B → C) through a run that evicts everything else to fit', async () => {
    const c = await upload(server.url);
    const b = await upload(server.url, [c]);
    const a = await upload(server.url, [b]);
    closure = [a, b, c];
    // Read after the closure, so a plain LRU would keep them and evict it.
    const unrelated = await uploadMany(server.url, 4);
    await server.app.get(PinsService).pin(a.hash);

    const result = await server.app.get(LruService).runOnce();

    expect(result).toMatchObject({ ran: true, evictedEntries: 4, evictedNarFiles: 4, sizeAfter: 3 * SIZE });
    await expectPresent(closure, true);
    await expectPresent(unrelated, false);
  });

  it('evicts the same closure once it is unpinned, dependants first', async () => {
    await server.app.get(PinsService).unpin(closure[0].hash);
    const newer = await uploadMany(server.url, 3);

    const result = await server.app.get(LruService).runOnce();

    expect(result).toMatchObject({ ran: true, evictedEntries: 3, sizeAfter: 3 * SIZE });
    await expectPresent(closure, false);
    await expectPresent(newer, true);
  });

  it('keeps a closure read as a whole (its top read last, its dependencies long ago) while older unrelated paths go', async () => {
    const older = (await server.app.get(NarInfoRepository).findLeastRecentlyUsedAfter(null, 10)).map((row) => row.hash);
    const d2 = await upload(server.url);
    const d1 = await upload(server.url, [d2]);
    const unrelated = await uploadMany(server.url, 2);
    const top = await upload(server.url, [d1, d2]);

    const result = await server.app.get(LruService).runOnce();

    // A plain LRU would have evicted the 3 older paths, then d2 and d1.
    expect(result).toMatchObject({ ran: true, evictedEntries: 5, sizeAfter: 3 * SIZE });
    await expectPresent([top, d1, d2], true);
    await expectPresent(unrelated, false);
    for (const hash of older) expect(await status(`${server.url}/${hash}.narinfo`)).toBe(404);
  });
});
