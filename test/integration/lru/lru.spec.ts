import { setTimeout as sleep } from 'node:timers/promises';
import { AccessTracker } from 'src/cache/access-tracker';
import { NarFileRepository, NarInfoRepository } from 'src/database';
import { LockPort } from 'src/locking';
import { LruService, narReadLockKey } from 'src/lru';
import { StoragePort } from 'src/storage';
import { RunningApp, startApp } from 'test/support/app';
import { until } from 'test/support/wait';
import { SlowReader, makeNar, putNar, putNarInfo, sha256Of, status, uploadPath } from './lru.fixtures';

const KIB = 1024;

/** The real application (SQLite, local storage, local locks) filled through HTTP uploads. */
describe('LRU eviction in one instance', () => {
  describe('a cache over its size limit', () => {
    const SIZE = 64 * KIB;
    let server: RunningApp;
    let paths: { hash: string; narUrl: string }[];
    let shared: { old: string; recent: string; narUrl: string };

    beforeAll(async () => {
      server = await startApp({ 'cache-allow-put-verb': 'true', 'cache-max-size': String(5 * SIZE) });
      // Uploaded in this order, so this is also the order of last access until some are touched.
      const sharedNar = makeNar(SIZE);
      await putNar(server.url, sharedNar);
      const old = await putNarInfo(server.url, sharedNar);
      paths = [];
      for (let i = 0; i < 8; i++) {
        const nar = makeNar(SIZE);
        paths.push({ hash: await uploadPath(server.url, nar), narUrl: nar.url });
      }
      const recent = await putNarInfo(server.url, sharedNar);
      shared = { old, recent, narUrl: sharedNar.url };

      // Access times are kept to the second: touches must fall in a later second than the uploads.
      await sleep(1100);
      for (const hash of [paths[0].hash, paths[1].hash, shared.recent]) {
        expect(await status(`${server.url}/${hash}.narinfo`)).toBe(200);
      }
      await server.app.get(AccessTracker).flush();
    });

    afterAll(() => server?.close());

    it('evicts the least recently used down to the limit, keeping the recently used and a NAR still in use', async () => {
      const sizeBefore = 9 * SIZE;
      expect(await server.app.get(NarFileRepository).sumStoredBytes()).toBe(sizeBefore);

      const result = await server.app.get(LruService).runOnce();

      // LRU order: shared.old (its NAR stays: shared.recent uses it), paths 2..7, then the touched ones.
      expect(result).toEqual({
        ran: true,
        evictedEntries: 5,
        evictedNarFiles: 4,
        evictedBytes: 4 * SIZE,
        sizeBefore,
        sizeAfter: 5 * SIZE,
        interrupted: false,
      });
      const narinfoStatus = async (hash: string) => status(`${server.url}/${hash}.narinfo`);
      expect(await narinfoStatus(shared.old)).toBe(404);
      expect(await narinfoStatus(shared.recent)).toBe(200);
      expect(await status(`${server.url}/${shared.narUrl}`)).toBe(200);
      for (const [i, path] of paths.entries()) {
        const kept = i < 2 || i >= 6;
        expect({ i, narinfo: await narinfoStatus(path.hash), nar: await status(`${server.url}/${path.narUrl}`) }).toEqual({
          i,
          narinfo: kept ? 200 : 404,
          nar: kept ? 200 : 404,
        });
      }
    });

    it('removes the stored objects with their rows', async () => {
      const storage = server.app.get(StoragePort);
      const narFiles = server.app.get(NarFileRepository);
      for (const path of paths.slice(2, 6)) {
        expect(await storage.head(path.narUrl)).toBeNull();
        expect(await narFiles.findByKey(path.narUrl)).toBeNull();
      }
      expect(await server.app.get(NarInfoRepository).count()).toBe(5);
    });

    it('does nothing more once within the limit', async () => {
      const result = await server.app.get(LruService).runOnce();
      expect(result).toMatchObject({ ran: true, evictedEntries: 0, evictedNarFiles: 0, sizeAfter: 5 * SIZE });
    });
  });

  describe('a client streaming a NAR during eviction', () => {
    // Far larger than the socket buffers between server and client, so the server's read stays open.
    const BIG = 32 * 1024 * KIB;
    let server: RunningApp;

    beforeAll(async () => {
      server = await startApp({ 'cache-allow-put-verb': 'true', 'cache-max-size': String(1024 * KIB) });
    });

    afterAll(() => server?.close());
    afterEach(() => jest.restoreAllMocks());

    it('receives it whole, and the NAR is deleted once the stream has ended', async () => {
      const nar = makeNar(BIG);
      await uploadPath(server.url, nar);
      const reader = new SlowReader(`${server.url}/${nar.url}`);
      await reader.firstBytes();

      const withLock = jest.spyOn(server.app.get(LockPort), 'withLock');
      let runFinishedAt = 0;
      const run = server.app
        .get(LruService)
        .runOnce()
        .finally(() => (runFinishedAt = Date.now()));
      // The LRU deletes the narinfo at once, then waits for the reader before touching the NAR: once it
      // asks for the NAR's lock (held by the paused reader), it cannot go on. Waiting for that request
      // replaces a sleep.
      await until('the LRU waits for the reader', () => withLock.mock.calls.some(([key]) => key === narReadLockKey(nar.url)));
      expect(runFinishedAt).toBe(0);
      expect(await server.app.get(NarInfoRepository).count()).toBe(0);
      expect(await server.app.get(StoragePort).head(nar.url)).not.toBeNull();

      reader.resume();
      const body = await reader.done;
      const result = await run;

      expect(body.length).toBe(BIG);
      expect(sha256Of(body)).toBe(sha256Of(nar.body));
      expect(result).toMatchObject({ ran: true, evictedEntries: 1, evictedNarFiles: 1, evictedBytes: BIG, sizeAfter: 0 });
      expect(await server.app.get(StoragePort).head(nar.url)).toBeNull();
      expect(await status(`${server.url}/${nar.url}`)).toBe(404);
    });
  });
});
