import { Injectable } from '@nestjs/common';
import { Counter, Gauge, Registry } from 'prom-client';
import { ClosureWalk, PathResult } from './closure-walk';

const RESULTS: readonly PathResult[] = ['fetched', 'cached', 'failed'];

/**
 * Warming, as it goes: paths queued (the roots and the references found), paths finished by result
 * (fetched: something came from upstream; cached: already stored; failed), NAR bytes fetched, warm
 * runs in progress and the paths they still have to do (those discovered so far: a closure grows
 * as it is walked).
 */
@Injectable()
export class WarmMetrics {
  private readonly paths: Counter<'result'>;
  private readonly bytes: Counter<never>;
  /** The walks in progress, read on scrape. */
  private readonly walks = new Set<ClosureWalk>();
  /** Paths queued by the walks that ended (those running are read from them on scrape). */
  private queuedByEnded = 0;

  constructor(registry: Registry) {
    const registers = [registry];
    this.paths = new Counter({
      name: 'ncps_warm_paths_total',
      help: 'Store paths warmed, by result: fetched (narinfo or NAR came from upstream), cached (already stored), failed',
      labelNames: ['result'],
      registers,
    });
    this.bytes = new Counter({ name: 'ncps_warm_bytes_total', help: 'NAR bytes fetched from upstreams by warming', registers });
    const walks = this.walks;
    const queuedByEnded = () => this.queuedByEnded;
    new Counter({
      name: 'ncps_warm_paths_queued_total',
      help: 'Store paths queued by warm runs: their roots and every reference found (invalid entries included, as failed paths)',
      registers,
      collect() {
        let queued = queuedByEnded();
        for (const walk of walks) queued += walk.discovered;
        this.reset();
        this.inc(queued);
      },
    });
    new Gauge({
      name: 'ncps_warm_in_progress',
      help: 'Warm runs in progress in this instance',
      registers,
      collect() {
        this.set(walks.size);
      },
    });
    new Gauge({
      name: 'ncps_warm_paths_pending',
      help: 'Store paths discovered by the warm runs in progress and not finished yet (a closure grows as it is walked)',
      registers,
      collect() {
        let pending = 0;
        for (const walk of walks) pending += walk.discovered - walk.done;
        this.set(pending);
      },
    });
    for (const result of RESULTS) this.paths.inc({ result }, 0);
    this.bytes.inc(0);
  }

  /** Counts `walk` in the gauges until the returned function is called. */
  track(walk: ClosureWalk): () => void {
    this.walks.add(walk);
    return () => {
      if (this.walks.delete(walk)) this.queuedByEnded += walk.discovered;
    };
  }

  finished(result: PathResult, bytes: number): void {
    this.paths.inc({ result });
    this.bytes.inc(bytes);
  }
}
