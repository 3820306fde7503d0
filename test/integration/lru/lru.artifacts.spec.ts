import { ArtifactRepository, NarInfoRepository } from 'src/database';
import { LruService } from 'src/lru';
import { StoragePort } from 'src/storage';
import { RunningApp, startApp } from 'test/support/app';
import { makeNar, makeStorePathHash, status, uploadPath } from './lru.fixtures';

const KIB = 1024;

async function put(url: string, body: Buffer): Promise<void> {
  const res = await fetch(url, { method: 'PUT', body });
  if (res.status !== 204) throw new Error(`PUT ${url}: ${res.status} ${await res.text()}`);
}

/**
 * Artifacts under the LRU (real app: SQLite, local storage): their bytes count against
 * --cache-max-size; a `.ls` goes with its narinfo; logs (and listings of no stored narinfo) go by
 * their own last access, before the narinfos accessed after them.
 */
describe('LRU eviction of artifacts', () => {
  let server: RunningApp;

  beforeAll(async () => {
    server = await startApp({ 'cache-allow-put-verb': 'true', 'cache-max-size': String(131 * KIB) });
  });
  afterAll(() => server?.close());

  it('evicts by last access across logs and narinfos, a listing with its narinfo, and stops at the limit', async () => {
    const upload = () => uploadPath(server.url, makeNar(64 * KIB));
    const hashes = { a: await upload(), b: await upload(), c: await upload() };
    const orphan = makeStorePathHash();
    const paths = {
      orphanListing: `${orphan}.ls`,
      listingA: `${hashes.a}.ls`,
      listingC: `${hashes.c}.ls`,
      oldLog: `log/${makeStorePathHash()}-old.drv`,
      newLog: `log/${makeStorePathHash()}-new.drv`,
    };
    for (const path of [paths.orphanListing, paths.listingA, paths.listingC]) await put(`${server.url}/${path}`, Buffer.alloc(KIB, '{'));
    for (const path of [paths.oldLog, paths.newLog]) await put(`${server.url}/${path}`, Buffer.alloc(2 * KIB, 'l'));
    // Access order (times only move forward, so set after the uploads): orphan listing, old log, a,
    // b, new log, c; a's listing is touched last, which must not keep it once a goes.
    const t = Date.now() + 60_000;
    await server.app.get(NarInfoRepository).touch(
      new Map([
        [hashes.a, t + 2],
        [hashes.b, t + 3],
        [hashes.c, t + 5],
      ]),
    );
    await server.app.get(ArtifactRepository).touch(
      new Map([
        [paths.orphanListing, t],
        [paths.oldLog, t + 1],
        [paths.newLog, t + 4],
        [paths.listingA, t + 9],
        [paths.listingC, t + 9],
      ]),
    );

    const result = await server.app.get(LruService).runOnce();

    // 3 NARs (192 KiB) + 3 listings (3 KiB) + 2 logs (4 KiB) = 199 KiB; the limit is 131 KiB: the
    // orphan listing, the old log, then a with its NAR and its listing (68 KiB) make room.
    expect(result).toEqual({
      ran: true,
      evictedEntries: 1,
      evictedNarFiles: 1,
      evictedBytes: 64 * KIB,
      sizeBefore: 199 * KIB,
      sizeAfter: 131 * KIB,
      interrupted: false,
    });
    const gone = [paths.orphanListing, paths.oldLog, paths.listingA, `${hashes.a}.narinfo`];
    const kept = [paths.newLog, paths.listingC, `${hashes.b}.narinfo`, `${hashes.c}.narinfo`];
    const statuses = async (list: string[]) => Promise.all(list.map(async (path) => [path, await status(`${server.url}/${path}`)]));
    expect(await statuses(gone)).toEqual(gone.map((path) => [path, 404]));
    expect(await statuses(kept)).toEqual(kept.map((path) => [path, 200]));
    const storage = server.app.get(StoragePort);
    expect(await storage.head(`ls/${hashes.a}.ls`)).toBeNull();
    expect(await storage.head(paths.oldLog)).toBeNull();
    expect(await storage.head(paths.newLog)).not.toBeNull();
  });
});
