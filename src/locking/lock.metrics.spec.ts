import { Registry } from 'prom-client';
import { LockMetrics } from './lock.metrics';

describe('LockMetrics', () => {
  it('registers the lock metrics on the given registry, never the global one', async () => {
    const registry = new Registry();
    new LockMetrics(registry);
    const names = (await registry.getMetricsAsJSON()).map((metric) => metric.name).sort();
    expect(names).toEqual([
      'ncps_lock_acquisitions_total',
      'ncps_lock_failures_total',
      'ncps_lock_hold_duration_seconds',
      'ncps_lock_retry_attempts_total',
    ]);
  });

  it('primes the series of the known types at 0', async () => {
    const registry = new Registry();
    new LockMetrics(registry).prime(['distributed'], ['timeout', 'redis_error']);
    const text = await registry.metrics();
    expect(text).toContain('ncps_lock_acquisitions_total{type="download",result="success",mode="distributed"} 0');
    expect(text).toContain('ncps_lock_acquisitions_total{type="lru",result="failure",mode="distributed"} 0');
    expect(text).toContain('ncps_lock_failures_total{type="cache",reason="redis_error",mode="distributed"} 0');
    expect(text).toContain('ncps_lock_retry_attempts_total{type="download"} 0');
    expect(text).toContain('ncps_lock_hold_duration_seconds_count{type="lru",mode="distributed"} 0');
  });
});
