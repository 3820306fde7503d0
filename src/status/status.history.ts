/** Cumulative counter totals at one instant (what the last-hour charts are drawn from). */
export interface Totals {
  hits: number;
  misses: number;
  servedBytes: number;
  fetchedBytes: number;
}

export interface Sample extends Totals {
  /** Milliseconds since the epoch. */
  at: number;
}

/** One chart bar: what happened between two samples. */
export interface Interval extends Totals {
  /** End of the interval (ms since the epoch). */
  at: number;
}

export const SAMPLE_INTERVAL_MS = 60_000;
/** 60 whole minutes need 61 samples (their boundaries). */
const KEPT = 61;

/**
 * A ring of counter totals, one a minute for the last hour. The sampler records on a timer, never
 * per request; `intervals` turns them into per-minute deltas, the current partial minute last.
 */
export class StatusHistory {
  private readonly samples: Sample[] = [];

  record(sample: Sample): void {
    this.samples.push(sample);
    if (this.samples.length > KEPT) this.samples.splice(0, this.samples.length - KEPT);
  }

  size(): number {
    return this.samples.length;
  }

  /** Per-interval deltas over the kept samples, then from the last sample to `now` (the partial minute). */
  intervals(now: Sample): Interval[] {
    const points = [...this.samples, now];
    const out: Interval[] = [];
    for (let i = 1; i < points.length; i++) {
      const [a, b] = [points[i - 1], points[i]];
      out.push({
        at: b.at,
        hits: Math.max(0, b.hits - a.hits),
        misses: Math.max(0, b.misses - a.misses),
        servedBytes: Math.max(0, b.servedBytes - a.servedBytes),
        fetchedBytes: Math.max(0, b.fetchedBytes - a.fetchedBytes),
      });
    }
    return out;
  }
}

/** Sums of the intervals (the figures of the last hour). */
export function sumIntervals(intervals: readonly Interval[]): Totals {
  return intervals.reduce(
    (t, i) => ({
      hits: t.hits + i.hits,
      misses: t.misses + i.misses,
      servedBytes: t.servedBytes + i.servedBytes,
      fetchedBytes: t.fetchedBytes + i.fetchedBytes,
    }),
    { hits: 0, misses: 0, servedBytes: 0, fetchedBytes: 0 },
  );
}
