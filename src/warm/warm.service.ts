import { BeforeApplicationShutdown, Inject, Injectable, Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { NcpsConfig } from 'src/config/config';
import { NCPS_CONFIG } from 'src/config/config.module';
import { ClosureWalk, PathOutcome, WarmSummary } from './closure-walk';
import { PathWarmer } from './path-warmer';
import { WarmTargets } from './warm-input';
import { WarmMetrics } from './warm.metrics';
import { waitAtMost } from 'src/common/deadline';

/** Paths warmed at once when nobody says otherwise. */
export const DEFAULT_WARM_CONCURRENCY = 8;
/** The most paths at once a warm run may ask for: each holds a narinfo fetch or a NAR download slot. */
export const MAX_WARM_CONCURRENCY = 64;

export interface WarmOptions {
  concurrency: number;
  /** Hears of every path that ended (besides the metrics). */
  onPath?: (outcome: PathOutcome) => void;
}

/** A warm run under way: its walk (counts readable while it runs) and its end. */
export interface WarmRun {
  walk: ClosureWalk;
  done: Promise<WarmSummary>;
}

/**
 * Warming: fetches whole closures into the cache ahead of the clients, through the normal miss path
 * (see PathWarmer), counted in the warm metrics. `ncps warm` runs one and waits for it; `POST /warm`
 * starts one in the background. On shutdown, running walks start no further path nor NAR download,
 * and the paths under way are given until the shutdown timeout to finish, before the database and
 * storage close.
 */
@Injectable()
export class WarmService implements BeforeApplicationShutdown {
  private readonly logger = new Logger(WarmService.name);
  private readonly stopping = new AbortController();
  private readonly running = new Set<Promise<WarmSummary>>();

  constructor(
    @Inject(NCPS_CONFIG) private readonly config: NcpsConfig,
    private readonly warmer: PathWarmer,
    private readonly metrics: WarmMetrics,
  ) {}

  async beforeApplicationShutdown(): Promise<void> {
    this.stopping.abort();
    await waitAtMost(Promise.all(this.running), this.config.server.shutdownTimeoutMs);
  }

  /** Starts warming the closures of `targets`; invalid entries count as failed paths. */
  begin(targets: WarmTargets, options: WarmOptions): WarmRun {
    const walk = new ClosureWalk((hash, progress) => this.warmer.warm(hash, progress, this.stopping.signal), {
      concurrency: options.concurrency,
      signal: this.stopping.signal,
      onPath: (outcome) => {
        this.metrics.finished(outcome.result, outcome.bytes);
        options.onPath?.(outcome);
      },
    });
    const untrack = this.metrics.track(walk);
    walk.reject(targets.invalid);
    const done = walk.run(targets.hashes).finally(() => {
      untrack();
      this.running.delete(done);
    });
    this.running.add(done);
    return { walk, done };
  }

  /** Starts warming in the background (for POST /warm): its id, which its log lines carry. */
  startInBackground(targets: WarmTargets, concurrency: number): string {
    const id = randomUUID();
    this.logger.log({ warm: id, roots: targets.hashes.length, concurrency }, 'warming started');
    const { done } = this.begin(targets, {
      concurrency,
      onPath: (outcome) => {
        if (outcome.result === 'failed') this.logger.warn({ warm: id, path: outcome.name, err: outcome.error }, 'warming a path failed');
      },
    });
    void done.then((summary) => this.logger.log({ warm: id, ...summary }, 'warming ended'));
    return id;
  }
}
