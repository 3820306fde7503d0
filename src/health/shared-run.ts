/**
 * Shares one run of `fn` among callers: whoever calls while a run is in flight, or within `ttlMs`
 * after it settled, gets that run's result (or its failure) instead of starting another.
 */
export function sharedRun<T>(fn: () => Promise<T>, ttlMs: number, now: () => number = Date.now): () => Promise<T> {
  let current: { result: Promise<T>; settledAt?: number } | undefined;
  return () => {
    if (current && (current.settledAt === undefined || now() - current.settledAt < ttlMs)) return current.result;
    const run: { result: Promise<T>; settledAt?: number } = { result: Promise.resolve().then(fn) };
    const settle = () => (run.settledAt = now());
    run.result.then(settle, settle);
    current = run;
    return run.result;
  };
}
