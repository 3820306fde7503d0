import { PathOutcome, WarmSummary } from './closure-walk';

/** Where progress goes: stderr, or a fake in tests. A TTY gets a bar redrawn in place. */
export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/** The counts a bar shows, read from the walk on each redraw. */
export interface ProgressSource {
  readonly discovered: number;
  readonly done: number;
  readonly failed: number;
  readonly bytes: number;
}

/** A bar is redrawn at most this often. */
const REDRAW_MS = 100;
/** The rate shown is over about this much of the recent past. */
const RATE_WINDOW_MS = 5_000;
const BAR_WIDTH = 20;
/** `\r` + erase the line: the bar is redrawn where it was. */
const CLEAR_LINE = '\r\x1b[K';

/**
 * What `ncps warm` shows while it runs. On a terminal: one line redrawn in place at most ten times a
 * second (paths done of those discovered so far, bytes, recent rate), failures printed above it.
 * Anywhere else (a pipe, a log file): one plain line per path as it ends. Then a summary either way.
 */
export class WarmProgress {
  private readonly tty: boolean;
  private timer?: NodeJS.Timeout;
  private readonly started: number;
  /** Recent (time, bytes) samples for the rate, oldest first. */
  private samples: Array<[number, number]> = [];
  private drawn = '';

  constructor(
    private readonly stream: ProgressStream,
    private readonly now: () => number = Date.now,
  ) {
    this.tty = stream.isTTY === true;
    this.started = now();
  }

  /** Starts redrawing the bar of `source` (on a terminal; elsewhere it does nothing). */
  follow(source: ProgressSource): void {
    if (!this.tty) return;
    this.redraw(source);
    this.timer = setInterval(() => this.redraw(source), REDRAW_MS);
    this.timer.unref();
  }

  /** A path ended: a plain line, or on a terminal only a failure, above the bar. */
  path(outcome: PathOutcome): void {
    if (this.tty && outcome.result !== 'failed') return;
    const line = describePath(outcome);
    if (!this.tty) return void this.stream.write(`${line}\n`);
    this.stream.write(`${CLEAR_LINE}${line}\n${this.drawn}`);
  }

  /** Stops the bar (leaving its last state on screen) and returns the summary line. */
  finish(summary: WarmSummary, source?: ProgressSource): string {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.tty && source) {
      this.redraw(source);
      this.stream.write('\n');
    }
    return describeSummary(summary, this.now() - this.started);
  }

  /** The bar for `source` now; written only when it changed. */
  private redraw(source: ProgressSource): void {
    const line = this.fit(this.bar(source));
    if (line === this.drawn) return;
    this.drawn = line;
    this.stream.write(`${CLEAR_LINE}${line}`);
  }

  private bar(source: ProgressSource): string {
    const { discovered, done, failed, bytes } = source;
    const filled = discovered === 0 ? 0 : Math.round((BAR_WIDTH * done) / discovered);
    const failures = failed > 0 ? `, ${failed} failed` : '';
    return `warming [${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}] ${done}/${discovered} paths${failures}  ${formatBytes(bytes)}  ${formatBytes(this.rate(bytes))}/s`;
  }

  /** Bytes per second over the last RATE_WINDOW_MS. */
  private rate(bytes: number): number {
    const now = this.now();
    this.samples.push([now, bytes]);
    while (this.samples.length > 2 && now - this.samples[1][0] >= RATE_WINDOW_MS) this.samples.shift();
    const [since, before] = this.samples[0];
    return now > since ? ((bytes - before) * 1000) / (now - since) : 0;
  }

  /** Cut to the terminal's width, so that a redraw never wraps (a wrapped line is not erased by \r). */
  private fit(line: string): string {
    const width = this.stream.columns;
    return width && line.length >= width ? line.slice(0, Math.max(0, width - 1)) : line;
  }
}

export function describePath(outcome: PathOutcome): string {
  switch (outcome.result) {
    case 'fetched':
      return `fetched ${outcome.name} (${formatBytes(outcome.bytes)})`;
    case 'cached':
      return `cached  ${outcome.name}`;
    case 'failed':
      return `failed  ${outcome.name}: ${outcome.error ?? 'unknown error'}`;
  }
}

export function describeSummary(summary: WarmSummary, elapsedMs: number): string {
  const { total, fetched, cached, failed, bytes, stopped } = summary;
  const seconds = elapsedMs / 1000;
  const rate = seconds > 0 ? `, ${formatBytes(bytes / seconds)}/s` : '';
  return (
    `warmed ${total} paths: ${fetched} fetched, ${cached} already cached, ${failed} failed; ` +
    `${formatBytes(bytes)} in ${seconds.toFixed(1)} s${rate}` +
    (stopped ? ' (stopped before the end)' : '')
  );
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${Math.round(value)} B` : `${value.toFixed(1)} ${UNITS[unit]}`;
}
