import { Registry } from 'prom-client';
import { NcpsConfig } from 'src/config/config';
import type { DownloadRegistry } from 'src/cache/download/download-registry';
import type { HealthProbe } from 'src/health/health-probe.service';
import { CacheMetrics } from 'src/cache';
import { LruMetrics } from 'src/lru';
import { StatusHistory, sumIntervals } from './status.history';
import { StatusService } from './status.service';

const s = (at: number, hits: number, misses = 0, servedBytes = 0, fetchedBytes = 0) => ({ at, hits, misses, servedBytes, fetchedBytes });

describe('StatusHistory', () => {
  it('turns samples into per-interval deltas, the current partial one last', () => {
    const history = new StatusHistory();
    history.record(s(0, 0));
    history.record(s(60_000, 5, 1, 100, 50));
    const intervals = history.intervals(s(90_000, 7, 1, 130, 50));
    expect(intervals).toEqual([s(60_000, 5, 1, 100, 50), s(90_000, 2, 0, 30, 0)]);
    expect(sumIntervals(intervals)).toEqual({ hits: 7, misses: 1, servedBytes: 130, fetchedBytes: 50 });
  });

  it('keeps an hour: 61 samples', () => {
    const history = new StatusHistory();
    for (let i = 0; i <= 100; i++) history.record(s(i * 60_000, i));
    expect(history.size()).toBe(61);
    const intervals = history.intervals(s(101 * 60_000, 101));
    expect(intervals).toHaveLength(61);
    expect(sumIntervals(intervals).hits).toBe(101 - 40);
  });
});

describe('StatusService sampling', () => {
  it('reads the counters (lazy ones included) at the injected clock', async () => {
    const registry = new Registry();
    const cache = new CacheMetrics(registry);
    let now = 1_000_000;
    const config = {
      cache: { hostname: 'h', maxNarSizeBytes: 1 },
      upstream: { urls: [] },
      storage: { kind: 'local', path: '/x' },
      database: { dialect: 'sqlite' },
      lock: { backend: 'local' },
    } as unknown as NcpsConfig;
    const downloads = { list: () => [] } as unknown as DownloadRegistry;
    const health = {
      run: async () => ({ up: true, down: [], report: { status: 'ok', details: { locks: { status: 'up', backend: 'local' } } } }),
    } as unknown as HealthProbe;
    const lru = new LruMetrics(registry);
    const service = new StatusService(config, registry, downloads, health, lru, () => now);
    await service.sample();
    cache.lookup('narinfo', 'hit');
    cache.lookup('narinfo', 'hit');
    cache.lookup('nar', 'miss');
    cache.fetched(300);
    now += 60_000;
    await service.sample();
    cache.lookup('nar', 'hit');
    now += 15_000;
    const view = await service.view();
    expect(view.uptimeSeconds).toBe(75);
    expect(view.intervals).toEqual([s(1_060_000, 2, 1, 0, 300), s(1_075_000, 1, 0, 0, 0)]);
    expect(view.checks).toEqual([{ name: 'locks', status: 'up', details: { backend: 'local' } }]);
    expect(view.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(view.lastLru).toBeUndefined();
    lru.runFinished({ evictedEntries: 3, evictedNarFiles: 2, evictedBytes: 4096, sizeBefore: 10, sizeAfter: 5, interrupted: false });
    expect((await service.view()).lastLru).toEqual({ at: expect.any(Date), result: 'completed', evictedEntries: 3, evictedBytes: 4096 });
  });
});
