import { RunningApp, startApp } from 'test/support/app';
import { FakeUpstream } from 'test/support/fake-upstream';
import { fakePath, gate } from 'test/support/fake-path';
import { Scrape } from 'test/support/prometheus';
import { until } from 'test/support/wait';

/**
 * The per-upstream and cache-saving figures after a known workload against two upstreams: one has
 * path a, the other path b, neither has the absent path. Every lookup asks both upstreams at once.
 */
describe('per-upstream and cache-saving metrics', () => {
  const a = fakePath('ua', 30_000);
  const b = fakePath('ub', 45_000);
  const absent = fakePath('gone', 10);
  const aNar = gate();
  let first: FakeUpstream;
  let second: FakeUpstream;
  let server: RunningApp;
  let before: Scrape;

  const scrape = () => Scrape.of(server.url);
  const get = async (path: string, status = 200): Promise<Buffer> => {
    const res = await fetch(`${server.url}${path}`);
    expect([path, res.status]).toEqual([path, status]);
    return Buffer.from(await res.arrayBuffer());
  };
  const delta = (after: Scrape, name: string, labels: Record<string, string> = {}) =>
    (after.value(name, labels) ?? 0) - (before.value(name, labels) ?? 0);

  beforeAll(async () => {
    first = await FakeUpstream.start();
    second = await FakeUpstream.start();
    first.serve(`/${a.hash}.narinfo`, a.narinfo);
    // Held until a client joined the prefetch of a: its bytes then go out while they are fetched.
    first.route(a.narPath, { body: a.nar, waitFor: aNar.wait });
    second.serve(`/${b.hash}.narinfo`, b.narinfo);
    second.serve(b.narPath, b.nar);
    const urls = [first.url, second.url];
    server = await startApp({ 'prometheus-enabled': true, 'cache-upstream-url': urls, 'cache-upstream-allow-unsigned': urls });
    before = await scrape();
  });

  afterAll(async () => {
    await server?.close();
    await first?.stop();
    await second?.stop();
  });

  it('start at 0 for every configured upstream', () => {
    for (const upstream of [new URL(first.url).host, new URL(second.url).host]) {
      for (const result of ['hit', 'not_found', 'error']) {
        const value = before.value('ncps_upstream_narinfo_lookups_total', { upstream, result });
        expect([upstream, result, value]).toEqual([upstream, result, 0]);
      }
      for (const kind of ['nar', 'artifact']) {
        expect([upstream, kind, before.value('ncps_upstream_fetched_bytes_total', { upstream, kind })]).toEqual([upstream, kind, 0]);
      }
    }
    expect(before.value('ncps_negative_cache_hits_total')).toBe(0);
    expect(before.value('ncps_cache_served_bytes_total', { kind: 'nar', source: 'cache' })).toBe(0);
    expect(before.value('ncps_nar_prefetches_total', { result: 'started' })).toBe(0);
  });

  it('count hits, not-found answers and bytes per upstream, negative-cache hits and bytes served by source', async () => {
    const fromUpstream = { narinfo: 0, nar: 0 };
    const fromCache = { narinfo: 0, nar: 0 };

    // a: a narinfo miss (its NAR prefetch starts, held upstream), a NAR request joining that download,
    // then a hit of each once stored.
    fromUpstream.narinfo += (await get(`/${a.hash}.narinfo`)).length;
    fromCache.narinfo += (await get(`/${a.hash}.narinfo`)).length;
    const aClient = get(a.narPath);
    await until('the NAR request of a joined its prefetch', async () => {
      return delta(await scrape(), 'ncps_nar_downloads_total', { result: 'joined' }) === 1;
    });
    aNar.open();
    const aBody = await aClient;
    expect(aBody.equals(a.nar)).toBe(true);
    fromUpstream.nar += aBody.length;
    await until('the download of a is stored', async () => (await scrape()).value('ncps_nar_downloads_in_flight') === 0);
    fromCache.nar += (await get(a.narPath)).length;

    // b: a narinfo miss; its NAR is fetched by the prefetch alone.
    fromUpstream.narinfo += (await get(`/${b.hash}.narinfo`)).length;
    await until('the prefetch of b is fetched', async () => {
      return delta(await scrape(), 'ncps_fetched_bytes_total') === a.nar.length + b.nar.length;
    });
    await until('nothing is downloading', async () => (await scrape()).value('ncps_nar_downloads_in_flight') === 0);

    // The absent path, twice: both upstreams say 404 once, then the negative cache answers.
    await get(`/${absent.hash}.narinfo`, 404);
    await get(`/${absent.hash}.narinfo`, 404);

    // Both upstreams are asked at once: the one that lost the race may count after the answer went out.
    let after = await scrape();
    await until('every upstream answer is counted', async () => {
      after = await scrape();
      return delta(after, 'ncps_upstream_narinfo_lookups_total') === 6;
    });
    const perUpstream = (url: string) => {
      const upstream = new URL(url).host;
      return {
        hit: delta(after, 'ncps_upstream_narinfo_lookups_total', { upstream, result: 'hit' }),
        notFound: delta(after, 'ncps_upstream_narinfo_lookups_total', { upstream, result: 'not_found' }),
        error: delta(after, 'ncps_upstream_narinfo_lookups_total', { upstream, result: 'error' }),
        narBytes: delta(after, 'ncps_upstream_fetched_bytes_total', { upstream, kind: 'nar' }),
        artifactBytes: delta(after, 'ncps_upstream_fetched_bytes_total', { upstream, kind: 'artifact' }),
      };
    };
    expect({ first: perUpstream(first.url), second: perUpstream(second.url) }).toEqual({
      first: { hit: 1, notFound: 2, error: 0, narBytes: a.nar.length, artifactBytes: 0 },
      second: { hit: 1, notFound: 2, error: 0, narBytes: b.nar.length, artifactBytes: 0 },
    });
    expect(first.count(`/${absent.hash}.narinfo`)).toBe(1);
    expect(second.count(`/${absent.hash}.narinfo`)).toBe(1);

    const served = (kind: string, source: string) => delta(after, 'ncps_cache_served_bytes_total', { kind, source });
    expect({
      negativeHits: delta(after, 'ncps_negative_cache_hits_total'),
      prefetchesStarted: delta(after, 'ncps_nar_prefetches_total', { result: 'started' }),
      prefetchesOther: delta(after, 'ncps_nar_prefetches_total') - delta(after, 'ncps_nar_prefetches_total', { result: 'started' }),
      servedNarinfo: { cache: served('narinfo', 'cache'), upstream: served('narinfo', 'upstream') },
      servedNar: { cache: served('nar', 'cache'), upstream: served('nar', 'upstream') },
      // Every body sent to a client said where it came from.
      servedNarinfoTotal: delta(after, 'ncps_served_bytes_total', { kind: 'narinfo' }),
      servedNarTotal: delta(after, 'ncps_served_bytes_total', { kind: 'nar' }),
    }).toEqual({
      negativeHits: 1,
      prefetchesStarted: 2,
      prefetchesOther: 0,
      servedNarinfo: { cache: fromCache.narinfo, upstream: fromUpstream.narinfo },
      servedNar: { cache: a.nar.length, upstream: a.nar.length },
      servedNarinfoTotal: fromCache.narinfo + fromUpstream.narinfo,
      servedNarTotal: 2 * a.nar.length,
    });
    expect(fromCache).toEqual({ narinfo: expect.any(Number), nar: a.nar.length });
    expect(fromCache.narinfo).toBeGreaterThan(0);
    expect(fromUpstream.nar).toBe(a.nar.length);
  }, 45_000);
});
