import { ClosureWalk, PathOutcome, PathProgress, WarmOne } from './closure-walk';

interface FakeNode {
  refs: string[];
  bytes?: number;
  /** Already stored: nothing fetched. */
  cached?: boolean;
  /** Fails after its references are known (as a NAR download would). */
  failNar?: string;
}

/** A fake upstream closure: hash → node; absent hashes are not found anywhere. */
function fakeWarmer(graph: Record<string, FakeNode>): { warmOne: WarmOne; calls: string[] } {
  const calls: string[] = [];
  const warmOne: WarmOne = async (hash: string, progress: PathProgress) => {
    calls.push(hash);
    const node = graph[hash];
    if (!node) throw new Error('not found in any upstream');
    progress.references(node.refs);
    if (node.failNar) throw new Error(node.failNar);
    return { storePath: `/nix/store/${hash}-x`, bytes: node.cached ? 0 : (node.bytes ?? 0), fetched: !node.cached };
  };
  return { warmOne, calls };
}

/** A promise the test resolves when it wants. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

describe('ClosureWalk', () => {
  it('visits every path of a closure once, breadth first, and counts fetched and cached paths and bytes', async () => {
    // top → a, b; a → c; b → c (shared); c → nothing
    const { warmOne, calls } = fakeWarmer({
      top: { refs: ['a', 'b'], bytes: 10 },
      a: { refs: ['c'], bytes: 20 },
      b: { refs: ['c'], cached: true },
      c: { refs: [], bytes: 30 },
    });
    const sut = new ClosureWalk(warmOne, { concurrency: 1 });

    const summary = await sut.run(['top']);

    expect(calls).toEqual(['top', 'a', 'b', 'c']);
    expect(summary).toEqual({ total: 4, fetched: 3, cached: 1, failed: 0, bytes: 60, stopped: false });
  });

  it('ends on cycles and self references, and visits roots named twice or inside another closure once', async () => {
    const { warmOne, calls } = fakeWarmer({
      a: { refs: ['a', 'b'] },
      b: { refs: ['b', 'a'] },
    });
    const sut = new ClosureWalk(warmOne, { concurrency: 4 });

    const summary = await sut.run(['a', 'b', 'a']);

    expect(calls.sort()).toEqual(['a', 'b']);
    expect(summary.total).toBe(2);
    expect(summary.failed).toBe(0);
  });

  it('counts a missing reference and a failed NAR as failures, and still walks the references of a failed path', async () => {
    const { warmOne, calls } = fakeWarmer({
      top: { refs: ['missing', 'broken'] },
      broken: { refs: ['leaf'], failNar: 'hash mismatch' },
      leaf: { refs: [] },
    });
    const outcomes: PathOutcome[] = [];
    const sut = new ClosureWalk(warmOne, { concurrency: 2, onPath: (o) => outcomes.push(o) });

    const summary = await sut.run(['top']);

    expect(calls.sort()).toEqual(['broken', 'leaf', 'missing', 'top']);
    expect(summary).toMatchObject({ total: 4, fetched: 2, failed: 2 });
    const failures = outcomes.filter((o) => o.result === 'failed').map((o) => [o.hash, o.error]);
    expect(failures.sort()).toEqual([
      ['broken', 'hash mismatch'],
      ['missing', 'not found in any upstream'],
    ]);
  });

  it('counts rejected entries as failed paths without walking them', async () => {
    const { warmOne, calls } = fakeWarmer({ a: { refs: [] } });
    const outcomes: PathOutcome[] = [];
    const sut = new ClosureWalk(warmOne, { concurrency: 1, onPath: (o) => outcomes.push(o) });

    sut.reject([{ entry: 'not-a-path', reason: 'neither a store path nor a store path hash' }]);
    const summary = await sut.run(['a']);

    expect(calls).toEqual(['a']);
    expect(summary).toMatchObject({ total: 2, fetched: 1, failed: 1 });
    expect(outcomes[0]).toMatchObject({ name: 'not-a-path', result: 'failed', error: 'neither a store path nor a store path hash' });
  });

  it('resolves at once with nothing to do', async () => {
    const { warmOne } = fakeWarmer({});
    await expect(new ClosureWalk(warmOne, { concurrency: 3 }).run([])).resolves.toMatchObject({ total: 0, failed: 0 });
  });

  it('never runs more paths at once than its concurrency, and runs that many when it can', async () => {
    const roots = Array.from({ length: 10 }, (_, i) => `p${i}`);
    const held = roots.map(() => gate());
    let running = 0;
    let most = 0;
    const reachedThree = gate();
    const warmOne: WarmOne = async (hash) => {
      running += 1;
      most = Math.max(most, running);
      if (running === 3) reachedThree.open();
      await held[Number(hash.slice(1))].wait;
      running -= 1;
      return { storePath: hash, bytes: 1, fetched: true };
    };
    const sut = new ClosureWalk(warmOne, { concurrency: 3 });

    const done = sut.run(roots);
    await reachedThree.wait;
    expect(sut.done).toBe(0);
    held.forEach((g) => g.open());

    await expect(done).resolves.toMatchObject({ total: 10, fetched: 10 });
    expect(most).toBe(3);
  });

  it('starts the references of a path as soon as its narinfo is known, while its NAR is still coming', async () => {
    const referenceStarted = gate();
    const warmOne: WarmOne = async (hash, progress) => {
      if (hash === 'top') {
        progress.references(['dep']);
        await referenceStarted.wait; // the NAR of top comes only after dep was started
      } else {
        referenceStarted.open();
      }
      return { storePath: hash, bytes: 0, fetched: true };
    };
    const sut = new ClosureWalk(warmOne, { concurrency: 2 });

    await expect(sut.run(['top'])).resolves.toMatchObject({ total: 2, fetched: 2 });
  });

  it('counts the bytes of downloads under way, and each byte once when they end', async () => {
    const download = { received: 0 };
    const release = gate();
    const receiving = gate();
    const warmOne: WarmOne = async (_hash, progress) => {
      progress.references([]);
      progress.receiving(download);
      receiving.open();
      await release.wait;
      return { storePath: '/nix/store/x', bytes: download.received, fetched: true };
    };
    const sut = new ClosureWalk(warmOne, { concurrency: 1 });

    const done = sut.run(['x']);
    await receiving.wait;
    download.received = 1234;
    expect(sut.bytes).toBe(1234);
    expect(sut.discovered - sut.done).toBe(1);
    download.received = 5000;
    release.open();

    await expect(done).resolves.toMatchObject({ bytes: 5000 });
    expect(sut.bytes).toBe(5000);
  });

  it('starts no further path once aborted, lets the running ones finish, and says it stopped', async () => {
    const stop = new AbortController();
    const { warmOne: inner, calls } = fakeWarmer({ a: { refs: ['b'] }, b: { refs: [] } });
    const warmOne: WarmOne = async (hash, progress) => {
      const warmed = await inner(hash, progress);
      stop.abort();
      return warmed;
    };
    const sut = new ClosureWalk(warmOne, { concurrency: 1, signal: stop.signal });

    const summary = await sut.run(['a']);

    expect(calls).toEqual(['a']);
    expect(summary).toMatchObject({ total: 2, fetched: 1, stopped: true });
  });

  it('refuses a concurrency below one', () => {
    expect(() => new ClosureWalk(fakeWarmer({}).warmOne, { concurrency: 0 })).toThrow(RangeError);
  });
});
