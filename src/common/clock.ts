import { Injectable } from '@nestjs/common';

/** A timer started by a Clock. */
export interface Timer {
  /** Stops it: it does not fire (again). */
  cancel(): void;
  /** Restarts its delay from now; a timeout that fired already fires once more. */
  refresh(): void;
  /** Lets the process exit while it is pending: for a timer that only does background work. */
  unref(): void;
}

/**
 * The time as services see it: what they decide by (expiries, timestamps they store) and the timers
 * they own, so that those decisions can be tested without waiting. An abstract class so that it is
 * the DI token and fakes are typed against it.
 */
export abstract class Clock {
  /** Wall-clock time, epoch ms. */
  abstract now(): number;
  /** Calls `fn` once, `ms` from now. */
  abstract setTimeout(fn: () => void, ms: number): Timer;
  /** Calls `fn` every `ms` from now on, until cancelled. */
  abstract setInterval(fn: () => void, ms: number): Timer;
}

/** Clock on Date.now and Node's timers. */
@Injectable()
export class SystemClock extends Clock {
  now(): number {
    return Date.now();
  }

  setTimeout(fn: () => void, ms: number): Timer {
    return nodeTimer(setTimeout(fn, ms));
  }

  setInterval(fn: () => void, ms: number): Timer {
    return nodeTimer(setInterval(fn, ms));
  }
}

function nodeTimer(timeout: NodeJS.Timeout): Timer {
  return {
    cancel: () => clearTimeout(timeout),
    refresh: () => void timeout.refresh(),
    unref: () => void timeout.unref(),
  };
}
