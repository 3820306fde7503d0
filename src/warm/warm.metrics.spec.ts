import { Registry } from 'prom-client';
import { ClosureWalk, PathProgress, WarmOne } from './closure-walk';
import { WarmMetrics } from './warm.metrics';

/** Paths whose warming waits until the test opens them; `refs` are reported first. */
function heldWarmer(refs: Record<string, string[]>): { warmOne: WarmOne; open: (hash: string) => void; started: string[] } {
  const gates = new Map<string, () => void>();
  const started: string[] = [];
  const warmOne: WarmOne = async (hash: string, progress: PathProgress) => {
    started.push(hash);
    progress.references(refs[hash] ?? []);
    await new Promise<void>((resolve) => gates.set(hash, resolve));
    if (hash === 'bad') throw new Error('not found in any upstream');
    return { storePath: `/nix/store/${hash}-x`, bytes: 10, fetched: true };
  };
  return { warmOne, open: (hash) => gates.get(hash)?.(), started };
}

describe('WarmMetrics', () => {
  let registry: Registry;
  let sut: WarmMetrics;

  beforeEach(() => {
    registry = new Registry();
    sut = new WarmMetrics(registry);
  });

  const figures = async () => {
    const values = new Map<string, number>();
    for (const metric of await registry.getMetricsAsJSON()) {
      for (const v of metric.values) values.set(`${metric.name}${v.labels.result ? `{${v.labels.result}}` : ''}`, v.value);
    }
    return {
      queued: values.get('ncps_warm_paths_queued_total'),
      pending: values.get('ncps_warm_paths_pending'),
      running: values.get('ncps_warm_in_progress'),
      fetched: values.get('ncps_warm_paths_total{fetched}'),
      failed: values.get('ncps_warm_paths_total{failed}'),
    };
  };

  it('counts the paths a run queues as it discovers them, those done and failed, and keeps the queued ones after it ends', async () => {
    await expect(figures()).resolves.toEqual({ queued: 0, pending: 0, running: 0, fetched: 0, failed: 0 });
    const { warmOne, open, started } = heldWarmer({ top: ['a', 'bad'] });
    const walk = new ClosureWalk(warmOne, { concurrency: 4, onPath: (o) => sut.finished(o.result, o.bytes) });
    const untrack = sut.track(walk);
    walk.reject([{ entry: 'not-a-path', reason: 'invalid' }]);
    const done = walk.run(['top']);
    // top reported its references: a and bad are queued and started too.
    expect(started).toEqual(['top', 'a', 'bad']);
    await expect(figures()).resolves.toEqual({ queued: 4, pending: 3, running: 1, fetched: 0, failed: 1 });
    open('top');
    open('bad');
    await new Promise((resolve) => setImmediate(resolve));
    await expect(figures()).resolves.toEqual({ queued: 4, pending: 1, running: 1, fetched: 1, failed: 2 });
    open('a');
    await done;
    untrack();
    await expect(figures()).resolves.toEqual({ queued: 4, pending: 0, running: 0, fetched: 2, failed: 2 });
    // A second run adds to the total.
    const second = new ClosureWalk(heldWarmer({}).warmOne, { concurrency: 1 });
    const untrackSecond = sut.track(second);
    void second.run(['x']);
    await expect(figures()).resolves.toMatchObject({ queued: 5, running: 1 });
    untrackSecond();
    untrackSecond();
    await expect(figures()).resolves.toMatchObject({ queued: 5, running: 0 });
  });
});
