import { LruSummary } from './lru.pass';

/**
 * DI token of what records LRU runs as metrics (ncps_lru_runs_total{result}, ncps_lru_evicted_bytes_total,
 * ncps_lru_evicted_entries_total). Optional: without a provider, runs are only logged.
 */
export const LRU_METRICS = Symbol('LRU_METRICS');

export interface LruRunRecorder {
  runFinished(summary: LruSummary): void;
  /** Another instance held the LRU lock. */
  runSkipped(): void;
  runFailed(): void;
}
