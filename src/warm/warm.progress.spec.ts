import { PathOutcome, WarmSummary } from './closure-walk';
import { ProgressSource, WarmProgress, describeSummary, formatBytes } from './warm.progress';

class FakeStream {
  readonly writes: string[] = [];
  constructor(
    readonly isTTY: boolean,
    readonly columns?: number,
  ) {}
  write(text: string): boolean {
    this.writes.push(text);
    return true;
  }
  get text(): string {
    return this.writes.join('');
  }
}

const fetched: PathOutcome = { hash: 'h1', name: '/nix/store/h1-a', result: 'fetched', bytes: 2048 };
const cached: PathOutcome = { hash: 'h2', name: '/nix/store/h2-b', result: 'cached', bytes: 0 };
const failed: PathOutcome = { hash: 'h3', name: 'h3', result: 'failed', bytes: 0, error: 'not found in any upstream' };
const summary: WarmSummary = { total: 3, fetched: 1, cached: 1, failed: 1, bytes: 2048, stopped: false };

describe('WarmProgress', () => {
  afterEach(() => jest.useRealTimers());

  it('writes one plain line per path, and no bar, when the stream is not a terminal', () => {
    const stream = new FakeStream(false);
    const sut = new WarmProgress(stream);
    sut.follow({ discovered: 3, done: 0, failed: 0, bytes: 0 });
    for (const outcome of [fetched, cached, failed]) sut.path(outcome);

    expect(stream.text).toBe('fetched /nix/store/h1-a (2.0 KiB)\ncached  /nix/store/h2-b\nfailed  h3: not found in any upstream\n');
    expect(stream.text).not.toContain('\r');
  });

  it('on a terminal redraws one bar in place at most ten times a second, with paths, bytes and rate', () => {
    jest.useFakeTimers({ now: 0 });
    const stream = new FakeStream(true, 200);
    const source: { -readonly [K in keyof ProgressSource]: ProgressSource[K] } = { discovered: 4, done: 0, failed: 0, bytes: 0 };
    const sut = new WarmProgress(stream, () => Date.now());

    sut.follow(source);
    expect(stream.writes).toEqual(['\r\x1b[Kwarming [....................] 0/4 paths  0 B  0 B/s']);

    source.done = 2;
    source.bytes = 2 * 1024 * 1024;
    jest.advanceTimersByTime(99);
    expect(stream.writes).toHaveLength(1); // not before 100 ms
    jest.advanceTimersByTime(1);
    expect(stream.writes).toHaveLength(2);
    expect(stream.writes[1]).toBe('\r\x1b[Kwarming [##########..........] 2/4 paths  2.0 MiB  20.0 MiB/s');

    for (let i = 0; i < 10; i++) {
      source.bytes += 1024;
      jest.advanceTimersByTime(10); // ten changes within 100 ms: one redraw
    }
    expect(stream.writes).toHaveLength(3);
  });

  it('prints failures above the bar and leaves the other paths to it', () => {
    jest.useFakeTimers({ now: 0 });
    const stream = new FakeStream(true, 200);
    const sut = new WarmProgress(stream, () => Date.now());
    sut.follow({ discovered: 3, done: 1, failed: 1, bytes: 0 });
    const bar = stream.writes[0];

    sut.path(fetched);
    sut.path(failed);

    expect(stream.writes).toEqual([bar, `\r\x1b[Kfailed  h3: not found in any upstream\n${bar.slice('\r\x1b[K'.length)}`]);
    expect(bar).toContain('1/3 paths, 1 failed');
  });

  it('cuts the bar to the terminal width, so that it never wraps', () => {
    const stream = new FakeStream(true, 30);
    const sut = new WarmProgress(stream);
    sut.follow({ discovered: 1, done: 0, failed: 0, bytes: 0 });
    sut.finish(summary);

    expect(stream.writes[0]).toBe('\r\x1b[K' + 'warming [....................] 0/1'.slice(0, 29));
  });

  it('ends the bar with a newline and stops redrawing, then gives the summary', () => {
    jest.useFakeTimers({ now: 0 });
    const stream = new FakeStream(true, 200);
    const source = { discovered: 3, done: 3, failed: 1, bytes: 2048 };
    const sut = new WarmProgress(stream, () => Date.now());
    sut.follow(source);
    jest.advanceTimersByTime(2000);

    const line = sut.finish(summary, source);
    const written = stream.writes.length;
    source.bytes = 99;
    jest.advanceTimersByTime(1000);

    expect(stream.writes).toHaveLength(written);
    expect(stream.text.endsWith('\n')).toBe(true);
    expect(line).toBe('warmed 3 paths: 1 fetched, 1 already cached, 1 failed; 2.0 KiB in 2.0 s, 1.0 KiB/s');
  });

  it('says when a run was stopped before the end', () => {
    expect(describeSummary({ ...summary, stopped: true }, 0)).toMatch(/in 0\.0 s \(stopped before the end\)$/);
  });

  it.each([
    [0, '0 B'],
    [1023, '1023 B'],
    [1536, '1.5 KiB'],
    [5 * 1024 ** 3, '5.0 GiB'],
  ])('formats %d bytes as %s', (bytes, text) => {
    expect(formatBytes(bytes)).toBe(text);
  });
});
