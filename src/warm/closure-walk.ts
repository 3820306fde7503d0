import { errorMessage } from 'src/common/error-fields';
/** What warming one path reports while it runs. */
export interface PathProgress {
  /** Its narinfo is known: the hashes it refers to (itself left out or not: the walk visits each once). */
  references(hashes: readonly string[]): void;
  /** Its NAR is coming: `source.received` bytes so far (read while the path is in progress). */
  receiving(source: { readonly received: number }): void;
}

/** A path warmed: its store path, the NAR bytes fetched for it, and whether anything came from upstream. */
export interface WarmedPath {
  storePath: string;
  bytes: number;
  fetched: boolean;
}

/** Warms one path (narinfo, then NAR); throws when it could not. */
export type WarmOne = (hash: string, progress: PathProgress) => Promise<WarmedPath>;

export type PathResult = 'fetched' | 'cached' | 'failed';

/** How one path ended. `name` is its store path when its narinfo was found, else what was asked for. */
export interface PathOutcome {
  hash: string;
  name: string;
  result: PathResult;
  bytes: number;
  error?: string;
}

export interface WarmSummary {
  /** Paths of the closures (invalid entries included, as failures). */
  total: number;
  fetched: number;
  cached: number;
  failed: number;
  bytes: number;
  /** True when the walk was stopped before it visited every path (shutdown). */
  stopped: boolean;
}

export interface WalkOptions {
  concurrency: number;
  /** Hears of every path that ended, as it ends. */
  onPath?: (outcome: PathOutcome) => void;
  /** Once aborted, no further path is started; those running finish. */
  signal?: AbortSignal;
}

/**
 * The walk over the closures of some roots: breadth first (paths in the order they were discovered),
 * each path once (a visited set, so cycles and shared dependencies end), at most `concurrency` paths
 * at once. A path's references join the walk as soon as its narinfo is known, while its NAR is still
 * coming. A path that fails is counted and the walk goes on; its references, when known, are still
 * walked. The counts can be read while it runs (for a progress display).
 */
export class ClosureWalk {
  private readonly visited = new Set<string>();
  private readonly queue: string[] = [];
  private next = 0;
  private active = 0;
  private readonly receiving = new Set<{ readonly received: number }>();
  private readonly counts: Record<PathResult, number> = { fetched: 0, cached: 0, failed: 0 };
  private finishedBytes = 0;
  /** Entries that named no path (see reject): failures outside the visited set. */
  private failedUnvisited = 0;
  /** Set by run: called once, when nothing runs and nothing more will start. */
  private ended?: () => void;

  constructor(
    private readonly warmOne: WarmOne,
    private readonly options: WalkOptions,
  ) {
    if (!Number.isInteger(options.concurrency) || options.concurrency < 1) throw new RangeError('concurrency must be a positive integer');
  }

  /** Paths known so far: the roots and every reference found. */
  get discovered(): number {
    return this.visited.size + this.failedUnvisited;
  }

  /** Paths that ended, successfully or not. */
  get done(): number {
    return this.counts.fetched + this.counts.cached + this.counts.failed;
  }

  get failed(): number {
    return this.counts.failed;
  }

  /** NAR bytes fetched, those of downloads under way included. */
  get bytes(): number {
    let bytes = this.finishedBytes;
    for (const source of this.receiving) bytes += source.received;
    return bytes;
  }

  /** Counts `entries` (invalid input) as failed paths without walking anything for them. */
  reject(entries: ReadonlyArray<{ entry: string; reason: string }>): void {
    for (const { entry, reason } of entries) {
      this.failedUnvisited += 1;
      this.finish({ hash: '', name: entry, result: 'failed', bytes: 0, error: reason });
    }
  }

  /** Walks the closures of `roots`; resolves with the counts once every path ended (never rejects). */
  run(roots: readonly string[]): Promise<WarmSummary> {
    for (const root of roots) this.visit(root);
    return new Promise((resolve) => {
      this.ended = () => resolve(this.summary());
      this.pump();
    });
  }

  /** Starts queued paths up to the concurrency; ends the walk when there is nothing left. */
  private pump(): void {
    const stopped = () => this.options.signal?.aborted === true;
    while (this.active < this.options.concurrency && this.next < this.queue.length && !stopped()) {
      const hash = this.queue[this.next++];
      this.active += 1;
      void this.warm(hash).finally(() => {
        this.active -= 1;
        this.pump();
      });
    }
    if (this.active === 0 && (this.next === this.queue.length || stopped())) {
      this.ended?.();
      this.ended = undefined;
    }
  }

  private visit(hash: string): void {
    if (this.visited.has(hash)) return;
    this.visited.add(hash);
    this.queue.push(hash);
  }

  private async warm(hash: string): Promise<void> {
    let source: { readonly received: number } | undefined;
    const progress: PathProgress = {
      // Started at once, up to the concurrency: this path's NAR may take long.
      references: (hashes) => {
        hashes.forEach((ref) => this.visit(ref));
        this.pump();
      },
      receiving: (s) => {
        source = s;
        this.receiving.add(s);
      },
    };
    try {
      const warmed = await this.warmOne(hash, progress);
      this.finish({ hash, name: warmed.storePath, result: warmed.fetched ? 'fetched' : 'cached', bytes: warmed.bytes });
    } catch (e) {
      this.finish({ hash, name: hash, result: 'failed', bytes: source?.received ?? 0, error: errorMessage(e) });
    } finally {
      if (source) this.receiving.delete(source);
    }
  }

  private finish(outcome: PathOutcome): void {
    this.counts[outcome.result] += 1;
    this.finishedBytes += outcome.bytes;
    this.options.onPath?.(outcome);
  }

  private summary(): WarmSummary {
    return {
      total: this.discovered,
      ...this.counts,
      bytes: this.finishedBytes,
      stopped: this.next < this.queue.length,
    };
  }
}
