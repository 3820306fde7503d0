import { randomBytes } from 'node:crypto';
import { NarInfoFetcher } from 'src/cache/narinfo-fetcher.service';
import { nix32Encode } from 'src/nix';
import { RunningApp, startApp } from 'test/support/app';
import { createTestDatabase, TestDatabase } from 'test/support/databases';
import { FakeUpstream } from 'test/support/fake-upstream';
import { fakePath, gate } from 'test/support/fake-path';
import { until } from 'test/support/wait';

const absentHash = () => nix32Encode(randomBytes(20));

/**
 * Narinfo misses as a fleet sends them: repeated and concurrent requests for a narinfo no upstream
 * has cost one upstream request per --cache-negative-ttl, on any instance sharing the database, and
 * never more than one at a time; an upstream failure is never taken for "not found".
 */
describe('negative caching of narinfo misses', () => {
  let upstream: FakeUpstream;
  const apps: RunningApp[] = [];

  const proxy = async (flags: Record<string, unknown> = {}): Promise<RunningApp> => {
    const app = await startApp({
      'cache-upstream-url': [upstream.url],
      'cache-upstream-allow-unsigned': [upstream.url],
      'cache-allow-put-verb': 'true',
      'cache-allow-delete-verb': 'true',
      ...flags,
    });
    apps.push(app);
    return app;
  };
  const status = async (app: RunningApp, path: string, init?: RequestInit) => (await fetch(`${app.url}${path}`, init)).status;
  const asked = (hash: string) => upstream.count(`/${hash}.narinfo`);

  beforeAll(async () => {
    upstream = await FakeUpstream.start();
  });
  afterAll(async () => {
    await upstream?.stop();
  });
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });

  it('10 sequential requests for an absent narinfo cost 1 upstream request, each answered 404', async () => {
    const server = await proxy();
    const hash = absentHash();

    for (let i = 0; i < 10; i++) expect(await status(server, `/${hash}.narinfo`)).toBe(404);

    expect(asked(hash)).toBe(1);
  });

  it('50 concurrent requests for an absent narinfo, all waiting on one upstream request, cost 1', async () => {
    const server = await proxy();
    const hash = absentHash();
    const upstreamAnswer = gate();
    upstream.route(`/${hash}.narinfo`, { status: 404, waitFor: upstreamAnswer.wait });
    const fetches = jest.spyOn(server.app.get(NarInfoFetcher), 'fetch');

    const requests = Array.from({ length: 50 }, () => status(server, `/${hash}.narinfo`));
    // Every request has reached the miss path while the upstream has not answered yet.
    await until(() => fetches.mock.calls.length === 50 && asked(hash) === 1);
    upstreamAnswer.open();

    expect(await Promise.all(requests)).toEqual(Array(50).fill(404));
    expect(asked(hash)).toBe(1);
    expect(await status(server, `/${hash}.narinfo`)).toBe(404);
    expect(asked(hash)).toBe(1);
  });

  it('50 concurrent requests share one upstream request even when its failure is not remembered', async () => {
    const server = await proxy();
    const hash = absentHash();
    const upstreamAnswer = gate();
    upstream.route(`/${hash}.narinfo`, { status: 500, waitFor: upstreamAnswer.wait });
    const fetches = jest.spyOn(server.app.get(NarInfoFetcher), 'fetch');

    const requests = Array.from({ length: 50 }, () => status(server, `/${hash}.narinfo`));
    await until(() => fetches.mock.calls.length === 50 && asked(hash) === 1);
    upstreamAnswer.open();

    expect(await Promise.all(requests)).toEqual(Array(50).fill(404));
    expect(asked(hash)).toBe(1);
  });

  it('asks once more after the TTL, not before', async () => {
    const ttlMs = 300;
    const server = await proxy({ 'cache-negative-ttl': `${ttlMs}ms` });
    const hash = absentHash();
    const started = Date.now();
    expect(await status(server, `/${hash}.narinfo`)).toBe(404);
    expect(asked(hash)).toBe(1);

    await until(async () => {
      expect(await status(server, `/${hash}.narinfo`)).toBe(404);
      return asked(hash) > 1;
    });

    expect(asked(hash)).toBe(2);
    expect(Date.now() - started).toBeGreaterThanOrEqual(ttlMs);
  });

  it('never takes an upstream 500 for "not found": the next request asks again', async () => {
    const server = await proxy();
    const hash = absentHash();
    upstream.route(`/${hash}.narinfo`, { status: 500 });

    expect(await status(server, `/${hash}.narinfo`)).toBe(404);
    expect(await status(server, `/${hash}.narinfo`)).toBe(404);
    expect(asked(hash)).toBe(2);

    // Once the upstream answers a real 404, that is remembered.
    upstream.route(`/${hash}.narinfo`, { status: 404 });
    expect(await status(server, `/${hash}.narinfo`)).toBe(404);
    expect(await status(server, `/${hash}.narinfo`)).toBe(404);
    expect(asked(hash)).toBe(3);
  });

  it('with a TTL of 0 remembers nothing', async () => {
    const server = await proxy({ 'cache-negative-ttl': '0' });
    const hash = absentHash();

    for (let i = 0; i < 3; i++) expect(await status(server, `/${hash}.narinfo`)).toBe(404);

    expect(asked(hash)).toBe(3);
  });

  it('an upload clears a remembered miss: once the narinfo is deleted again, the upstream is asked again', async () => {
    const server = await proxy();
    const path = fakePath('uploaded', 100);
    expect(await status(server, `/${path.hash}.narinfo`)).toBe(404);
    expect(await status(server, `/${path.hash}.narinfo`)).toBe(404);
    expect(asked(path.hash)).toBe(1);

    expect(await status(server, path.narPath, { method: 'PUT', body: path.nar })).toBe(204);
    expect(await status(server, `/${path.hash}.narinfo`, { method: 'PUT', body: path.narinfo })).toBe(204);
    expect(await status(server, `/${path.hash}.narinfo`)).toBe(200);
    expect(await status(server, `/${path.hash}.narinfo`, { method: 'DELETE' })).toBe(204);

    expect(await status(server, `/${path.hash}.narinfo`)).toBe(404);
    expect(asked(path.hash)).toBe(2);
  });

  describe('two instances sharing a PostgreSQL database', () => {
    let db: TestDatabase;
    beforeAll(async () => {
      db = await createTestDatabase('postgres');
    });
    afterAll(async () => {
      await db?.drop();
    });

    it('a miss one instance remembered costs the other no upstream request', async () => {
      const one = await proxy({ 'cache-database-url': db.url });
      const other = await proxy({ 'cache-database-url': db.url });
      const hash = absentHash();

      expect(await status(one, `/${hash}.narinfo`)).toBe(404);
      expect(await status(other, `/${hash}.narinfo`)).toBe(404);
      expect(await status(other, `/${hash}.narinfo`)).toBe(404);

      expect(asked(hash)).toBe(1);
    });
  });
});
