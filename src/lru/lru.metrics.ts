import { Injectable } from '@nestjs/common';
import { Counter, Registry } from 'prom-client';
import { LruSummary } from './lru.pass';

/** `result` of ncps_lru_runs_total. */
type LruRunOutcome = 'completed' | 'interrupted' | 'skipped' | 'failed';

const OUTCOMES: readonly LruRunOutcome[] = ['completed', 'interrupted', 'skipped', 'failed'];

/**
 * LRU runs and what they evicted, recorded by LruService: `runFinished(summary)` after a pass
 * (completed, or interrupted when the lock was lost or ncps stops), `runSkipped()` when another
 * instance held the LRU lock, `runFailed()` when the pass threw. /status shows the last run.
 */
@Injectable()
export class LruMetrics {
  private readonly runs: Counter<'result'>;
  private readonly evictedBytes: Counter<never>;
  private readonly evictedEntries: Counter<'kind'>;
  /** The last run this process saw end (shown on /status; evictedEntries counts narinfos); undefined before the first. */
  lastRun: { at: Date; result: LruRunOutcome; evictedBytes: number; evictedEntries: number } | undefined;

  constructor(registry: Registry) {
    const registers = [registry];
    this.runs = new Counter({
      name: 'ncps_lru_runs_total',
      help: 'LRU runs by result: completed, interrupted (lock lost or shutdown), skipped (another instance ran it), failed',
      labelNames: ['result'],
      registers,
    });
    this.evictedBytes = new Counter({
      name: 'ncps_lru_evicted_bytes_total',
      help: 'Bytes of NAR files deleted by the LRU',
      registers,
    });
    this.evictedEntries = new Counter({
      name: 'ncps_lru_evicted_entries_total',
      help: 'Entries deleted by the LRU, by kind (narinfo, nar)',
      labelNames: ['kind'],
      registers,
    });
    for (const result of OUTCOMES) this.runs.inc({ result }, 0);
    this.evictedBytes.inc(0);
    this.evictedEntries.inc({ kind: 'narinfo' }, 0);
    this.evictedEntries.inc({ kind: 'nar' }, 0);
  }

  runFinished(summary: LruSummary): void {
    const result = summary.interrupted ? 'interrupted' : 'completed';
    this.runs.inc({ result });
    this.lastRun = { at: new Date(), result, evictedBytes: summary.evictedBytes, evictedEntries: summary.evictedEntries };
    this.evictedBytes.inc(summary.evictedBytes);
    this.evictedEntries.inc({ kind: 'narinfo' }, summary.evictedEntries);
    this.evictedEntries.inc({ kind: 'nar' }, summary.evictedNarFiles);
  }

  runSkipped(): void {
    this.runs.inc({ result: 'skipped' });
    this.lastRun = { at: new Date(), result: 'skipped', evictedBytes: 0, evictedEntries: 0 };
  }

  runFailed(): void {
    this.runs.inc({ result: 'failed' });
    this.lastRun = { at: new Date(), result: 'failed', evictedBytes: 0, evictedEntries: 0 };
  }
}
