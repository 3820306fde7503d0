import { Clock, Timer } from 'src/common/clock';

interface Pending {
  fn: () => void;
  dueAt: number;
  /** Set for an interval: its period. */
  every?: number;
}

/**
 * A Clock whose time moves only when the test says so. `advance` fires the timers that fall due on
 * the way, in order, each at its own time, and lets the promises they start settle in between.
 */
export class FakeClock extends Clock {
  private time: number;
  private readonly pending = new Set<Pending>();

  constructor(start = 1_000_000) {
    super();
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  setTimeout(fn: () => void, ms: number): Timer {
    return this.start({ fn, dueAt: this.time + ms }, ms);
  }

  setInterval(fn: () => void, ms: number): Timer {
    return this.start({ fn, dueAt: this.time + ms, every: ms }, ms);
  }

  /** Timers armed now (neither cancelled nor, for a timeout, fired). */
  get timers(): number {
    return this.pending.size;
  }

  /** Sets the time without firing anything (a jump of the wall clock). */
  set(time: number): void {
    this.time = time;
  }

  /**
   * Lets what was started so far run at the current time, then moves the time `ms` forward, firing
   * every timer due by then at its time.
   */
  async advance(ms: number): Promise<void> {
    await settle();
    const target = this.time + ms;
    for (let next = this.nextDue(target); next; next = this.nextDue(target)) {
      this.time = next.dueAt;
      if (next.every === undefined) this.pending.delete(next);
      else next.dueAt += next.every;
      next.fn();
      await settle();
    }
    this.time = target;
    await settle();
  }

  private nextDue(by: number): Pending | undefined {
    let first: Pending | undefined;
    for (const timer of this.pending) if (timer.dueAt <= by && (!first || timer.dueAt < first.dueAt)) first = timer;
    return first;
  }

  private start(timer: Pending, ms: number): Timer {
    this.pending.add(timer);
    return {
      cancel: () => void this.pending.delete(timer),
      refresh: () => {
        timer.dueAt = this.time + ms;
        this.pending.add(timer);
      },
      unref: () => undefined,
    };
  }
}

/** Lets the promise chains started so far run (a turn of the event loop). */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));
