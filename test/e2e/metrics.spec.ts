import { readFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { LruService } from 'src/lru';
import { STORED_SAMPLE_TTL_MS } from 'src/cache/stored.metrics';
import { RunningApp, startApp } from 'test/support/app';
import { FakeUpstream } from 'test/support/fake-upstream';
import { fakePath, gate } from 'test/support/fake-path';
import { Scrape } from 'test/support/prometheus';

/**
 * GETs `url` and hangs up as soon as the response starts. node:http without an agent rather than
 * fetch: after an abort, fetch's pool opens a spare connection that would keep the server's
 * graceful close waiting until its deadline.
 */
function getAndHangUp(url: string): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false }, (res) => {
      req.destroy();
      resolve(res.statusCode);
    });
    req.on('error', reject);
    req.end();
  });
}

async function until(what: string, condition: () => Promise<boolean>, withinMs = 10_000): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe('/metrics', () => {
  it('is 404 without --prometheus-enabled', async () => {
    const server = await startApp();
    try {
      expect((await fetch(`${server.url}/metrics`)).status).toBe(404);
    } finally {
      await server.close();
    }
  });

  describe('with --prometheus-enabled', () => {
    const a = fakePath('a', 40_000);
    const b = fakePath('b', 60_000);
    const c = fakePath('c', 90_000);
    const aNar = gate();
    const bNarinfo = gate();
    const bNar = gate();
    let upstream: FakeUpstream;
    let server: RunningApp;
    let upstreamHost: string;

    beforeAll(async () => {
      upstream = await FakeUpstream.start();
      upstream.serve(`/${a.hash}.narinfo`, a.narinfo);
      upstream.route(a.narPath, { body: a.nar, waitFor: aNar.wait });
      upstream.route(`/${b.hash}.narinfo`, { body: b.narinfo, waitFor: bNarinfo.wait });
      // Slow enough that a client can hang up while it streams.
      upstream.route(b.narPath, { body: b.nar, waitFor: bNar.wait, throttle: { chunkSize: 6_000, intervalMs: 30 } });
      upstream.serve(`/${c.hash}.narinfo`, c.narinfo);
      upstream.serve(c.narPath, c.nar);
      upstreamHost = new URL(upstream.url).host;
      // A limit below the size of c, for the LRU test; without a schedule the LRU only runs when a test runs it.
      server = await startApp({
        'prometheus-enabled': true,
        'cache-upstream-url': [upstream.url],
        'cache-upstream-allow-unsigned': [upstream.url],
        'cache-max-size': '80K',
      });
    });
    afterAll(async () => {
      await server?.close();
      await upstream?.stop();
    });

    const scrape = () => Scrape.of(server.url);
    const get = (path: string) => fetch(`${server.url}${path}`);

    it('primes the counters of every known label at 0 before any request', async () => {
      const metrics = await scrape();
      const zeroes: Array<[string, Record<string, string>]> = [
        ['ncps_cache_requests_total', { kind: 'narinfo', result: 'hit' }],
        ['ncps_cache_requests_total', { kind: 'narinfo', result: 'miss' }],
        ['ncps_cache_requests_total', { kind: 'nar', result: 'hit' }],
        ['ncps_cache_requests_total', { kind: 'nar', result: 'miss' }],
        ['ncps_served_bytes_total', { kind: 'nar' }],
        ['ncps_served_bytes_total', { kind: 'narinfo' }],
        ['ncps_fetched_bytes_total', {}],
        ['ncps_nar_downloads_total', { result: 'started' }],
        ['ncps_nar_downloads_total', { result: 'joined' }],
        ['ncps_nar_downloads_in_flight', {}],
        ['ncps_lru_runs_total', { result: 'completed' }],
        ['ncps_lru_runs_total', { result: 'interrupted' }],
        ['ncps_lru_runs_total', { result: 'skipped' }],
        ['ncps_lru_runs_total', { result: 'failed' }],
        ['ncps_lru_evicted_bytes_total', {}],
        ['ncps_lru_evicted_entries_total', { kind: 'narinfo' }],
        ['ncps_lru_evicted_entries_total', { kind: 'nar' }],
        ['ncps_lock_acquisitions_total', { type: 'download', result: 'success', mode: 'local' }],
        ['ncps_lock_acquisitions_total', { type: 'download', result: 'failure', mode: 'local' }],
        ['ncps_lock_acquisitions_total', { type: 'lru', result: 'failure', mode: 'local' }],
        ['ncps_lock_failures_total', { type: 'download', reason: 'timeout', mode: 'local' }],
        ['ncps_lock_retry_attempts_total', { type: 'download' }],
        ['ncps_lock_hold_duration_seconds_count', { type: 'download', mode: 'local' }],
        ['ncps_stored_bytes', {}],
        ['ncps_stored_entries', { kind: 'narinfo' }],
        ['ncps_stored_entries', { kind: 'nar' }],
      ];
      for (const [name, labels] of zeroes) expect([name, labels, metrics.value(name, labels)]).toEqual([name, labels, 0]);
    });

    it('follows a scripted workload: misses, hits, a download joined by concurrent clients, a hang-up', async () => {
      const before = await scrape();
      const delta = (after: Scrape, name: string, labels: Record<string, string> = {}) =>
        (after.value(name, labels) ?? 0) - (before.value(name, labels) ?? 0);
      let narinfoBytes = 0;
      let narBytes = 0;
      const read = async (res: Response): Promise<Buffer> => {
        expect(res.status).toBe(200);
        return Buffer.from(await res.arrayBuffer());
      };

      // Path a: narinfo miss (fetched; its NAR prefetch starts and is held), NAR miss joining the
      // prefetch, then a hit of each once stored.
      narinfoBytes += (await read(await get(`/${a.hash}.narinfo`))).length;
      narinfoBytes += (await read(await get(`/${a.hash}.narinfo`))).length;
      const aClient = get(a.narPath);
      await until(
        'the NAR request of a joined the prefetch',
        async () => (await scrape()).value('ncps_nar_downloads_total', { result: 'joined' }) === 1,
      );
      aNar.open();
      const aBody = await read(await aClient);
      expect(aBody.equals(a.nar)).toBe(true);
      narBytes += aBody.length;
      // The last byte goes out once the bytes are verified; storing them may finish just after.
      await until('the download of a is stored', async () => (await scrape()).value('ncps_nar_downloads_in_flight') === 0);
      const aHit = await read(await get(a.narPath));
      expect(aHit.equals(a.nar)).toBe(true);
      narBytes += aHit.length;

      // Path b: 5 concurrent narinfo misses share one fetch while upstream holds its answer.
      const bNarinfos = Array.from({ length: 5 }, () => get(`/${b.hash}.narinfo`).then(read));
      await until(
        '5 narinfo lookups of b missed',
        async () => delta(await scrape(), 'ncps_cache_requests_total', { kind: 'narinfo', result: 'miss' }) === 6,
      );
      bNarinfo.open();
      for (const body of await Promise.all(bNarinfos)) narinfoBytes += body.length;

      // ... then 5 clients of its uncached NAR, plus one that hangs up, all on the one download. The
      // 5 narinfo requests shared one fetch, so they started one prefetch between them: nothing joined.
      const bClients = Array.from({ length: 5 }, () => get(b.narPath).then(read));
      const quitter = getAndHangUp(`${server.url}${b.narPath}`);
      await until(
        'every NAR request of b joined its download',
        async () => delta(await scrape(), 'ncps_nar_downloads_total', { result: 'joined' }) === 1 + 6,
      );
      const during = await scrape();
      expect(during.value('ncps_nar_downloads_in_flight')).toBe(1);
      bNar.open();
      expect(await quitter).toBe(200);
      for (const body of await Promise.all(bClients)) {
        expect(body.equals(b.nar)).toBe(true);
        narBytes += body.length;
      }
      expect(upstream.count(b.narPath)).toBe(1);
      expect(upstream.count(`/${b.hash}.narinfo`)).toBe(1);

      // Stored figures are sampled at most every STORED_SAMPLE_TTL_MS: wait for a fresh sample.
      let after = await scrape();
      await until(
        'the stored figures include both paths',
        async () => {
          after = await scrape();
          return after.value('ncps_stored_entries', { kind: 'nar' }) === 2;
        },
        STORED_SAMPLE_TTL_MS + 5_000,
      );
      await until('the hang-up is measured', async () => {
        after = await scrape();
        return (after.value('ncps_http_request_duration_seconds_count', { route: '/nar/:name', status: 'aborted' }) ?? 0) === 1;
      });

      expect({
        narinfoHits: delta(after, 'ncps_cache_requests_total', { kind: 'narinfo', result: 'hit' }),
        narinfoMisses: delta(after, 'ncps_cache_requests_total', { kind: 'narinfo', result: 'miss' }),
        narHits: delta(after, 'ncps_cache_requests_total', { kind: 'nar', result: 'hit' }),
        narMisses: delta(after, 'ncps_cache_requests_total', { kind: 'nar', result: 'miss' }),
        downloadsStarted: delta(after, 'ncps_nar_downloads_total', { result: 'started' }),
        downloadsJoined: delta(after, 'ncps_nar_downloads_total', { result: 'joined' }),
        inFlight: after.value('ncps_nar_downloads_in_flight'),
        fetchedBytes: delta(after, 'ncps_fetched_bytes_total'),
        servedNarinfoBytes: delta(after, 'ncps_served_bytes_total', { kind: 'narinfo' }),
        upstreamNarinfo: delta(after, 'ncps_upstream_requests_total', { upstream: upstreamHost, kind: 'narinfo', status: '200' }),
        upstreamNar: delta(after, 'ncps_upstream_requests_total', { upstream: upstreamHost, kind: 'nar', status: '200' }),
        storedBytes: after.value('ncps_stored_bytes'),
        storedNarinfos: after.value('ncps_stored_entries', { kind: 'narinfo' }),
        storedNars: after.value('ncps_stored_entries', { kind: 'nar' }),
        lockFailures: delta(after, 'ncps_lock_failures_total'),
        lockRetries: delta(after, 'ncps_lock_retry_attempts_total'),
      }).toEqual({
        narinfoHits: 1,
        narinfoMisses: 6,
        narHits: 1,
        narMisses: 7,
        downloadsStarted: 2,
        downloadsJoined: 7,
        inFlight: 0,
        fetchedBytes: a.nar.length + b.nar.length,
        servedNarinfoBytes: narinfoBytes,
        upstreamNarinfo: 2,
        upstreamNar: 2,
        storedBytes: a.nar.length + b.nar.length,
        storedNarinfos: 2,
        storedNars: 2,
        // Local locks queue: contention waits, it neither fails nor retries.
        lockFailures: 0,
        lockRetries: 0,
      });
      // The hang-up got part of b at most; everyone else got every byte.
      const servedNar = delta(after, 'ncps_served_bytes_total', { kind: 'nar' });
      expect(servedNar).toBeGreaterThanOrEqual(narBytes);
      expect(servedNar).toBeLessThanOrEqual(narBytes + b.nar.length);

      // The download lock was taken once per narinfo fetch (b's 5 concurrent lookups share one) and
      // per NAR download (a, b): 1 + 1 + 2. Every hold ended.
      expect(delta(after, 'ncps_lock_acquisitions_total', { type: 'download', result: 'success', mode: 'local' })).toBe(4);
      expect(delta(after, 'ncps_lock_hold_duration_seconds_count', { type: 'download', mode: 'local' })).toBe(4);

      // Durations by route pattern and status, never by raw URL.
      expect(delta(after, 'ncps_http_request_duration_seconds_count', { method: 'GET', route: '/:name', status: '200' })).toBe(7);
      expect(delta(after, 'ncps_http_request_duration_seconds_count', { method: 'GET', route: '/nar/:name', status: '200' })).toBe(7);
      expect(after.series('ncps_http_request_duration_seconds_count').every((s) => !s.labels.route.includes(a.hash))).toBe(true);
    }, 45_000);

    it('counts LRU runs and what they evicted', async () => {
      expect((await get(`/${c.hash}.narinfo`)).status).toBe(200);
      expect(Buffer.from(await (await get(c.narPath)).arrayBuffer()).equals(c.nar)).toBe(true);
      await until('the download of c is stored', async () => (await scrape()).value('ncps_nar_downloads_in_flight') === 0);
      const before = await scrape();
      const summary = await server.app.get(LruService).runOnce();
      if (!summary.ran) throw new Error('the LRU did not run: its lock was held');
      expect(summary).toMatchObject({ interrupted: false, evictedBytes: expect.any(Number) });
      expect(summary.evictedBytes).toBeGreaterThan(0);
      const after = await scrape();
      const delta = (name: string, labels: Record<string, string> = {}) =>
        (after.value(name, labels) ?? 0) - (before.value(name, labels) ?? 0);
      expect({
        completed: delta('ncps_lru_runs_total', { result: 'completed' }),
        skipped: delta('ncps_lru_runs_total', { result: 'skipped' }),
        evictedBytes: delta('ncps_lru_evicted_bytes_total'),
        evictedNarinfos: delta('ncps_lru_evicted_entries_total', { kind: 'narinfo' }),
        evictedNars: delta('ncps_lru_evicted_entries_total', { kind: 'nar' }),
        lruLocks: delta('ncps_lock_acquisitions_total', { type: 'lru', result: 'success' }),
      }).toEqual({
        completed: 1,
        skipped: 0,
        evictedBytes: summary.evictedBytes,
        evictedNarinfos: summary.evictedEntries,
        evictedNars: summary.evictedNarFiles,
        lruLocks: 1,
      });
    });

    it('labels requests matching no route as unmatched', async () => {
      expect((await get('/no/such/route')).status).toBe(404);
      await until(
        'the 404 is measured',
        async () => ((await scrape()).value('ncps_http_request_duration_seconds_count', { route: 'unmatched', status: '404' }) ?? 0) >= 1,
      );
      const metrics = await scrape();
      expect(metrics.value('ncps_http_request_duration_seconds_count', { route: 'unmatched', status: '404' })).toBe(1);
    });

    it('lists exactly the ncps metrics the README documents', async () => {
      // Histograms have no series before their first observation: make sure each has one.
      expect((await get('/healthz')).status).toBe(200);
      await until('a request is measured', async () => (await scrape()).series('ncps_http_request_duration_seconds_count').length > 0);
      const readme = await readFile(join(__dirname, '../../README.md'), 'utf8');
      // `ncps_stored_*` is a wildcard; PromQL examples may name a histogram's _bucket series.
      const names = (readme.match(/\bncps_[a-z_]+/g) ?? [])
        .filter((n) => !n.endsWith('_'))
        .map((n) => n.replace(/_(bucket|sum|count)$/, ''));
      expect([...new Set(names)].sort()).toEqual((await scrape()).families('ncps_'));
    });
  });
});
