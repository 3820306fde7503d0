/**
 * Runs `find` on every candidate at once and settles with the answer of the best priority (lowest
 * number) among those that have one, as soon as that is certain: when a candidate has answered and
 * every candidate of a strictly better priority has answered null. Among equal priorities the first
 * answer wins. A rejection counts as null; calls still running when the race is decided are left to
 * finish on their own.
 */
export function firstByPriority<C extends { priority: number }, R>(
  candidates: readonly C[],
  find: (candidate: C) => Promise<R | null>,
): Promise<R | null> {
  const ranks = [...new Set(candidates.map((candidate) => candidate.priority))].sort((a, b) => a - b);
  const pending = new Map<number, number>();
  for (const { priority } of candidates) pending.set(priority, (pending.get(priority) ?? 0) + 1);
  const found = new Map<number, R>();

  return new Promise((resolve) => {
    const decide = (): void => {
      for (const rank of ranks) {
        if (found.has(rank)) return resolve(found.get(rank) as R);
        if ((pending.get(rank) ?? 0) > 0) return; // a better answer may still come
      }
      resolve(null);
    };
    for (const candidate of candidates) {
      const rank = candidate.priority; // read once: a health check may change it during the race
      void find(candidate)
        .catch(() => null)
        .then((result) => {
          pending.set(rank, (pending.get(rank) ?? 0) - 1);
          if (result !== null && !found.has(rank)) found.set(rank, result);
          decide();
        });
    }
    if (candidates.length === 0) resolve(null);
  });
}
