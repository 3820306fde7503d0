/**
 * In-process fan-out of "key released" notifications (Redis pub/sub messages, PostgreSQL NOTIFY
 * payloads) to the waiters of this instance. Listeners exist only while someone waits.
 */
export class ReleaseSignals {
  private readonly listeners = new Map<string, Set<() => void>>();

  listen(key: string, listener: () => void): () => void {
    let set = this.listeners.get(key);
    if (!set) {
      set = new Set();
      this.listeners.set(key, set);
    }
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.listeners.get(key) === set) this.listeners.delete(key);
    };
  }

  notify(key: string): void {
    for (const listener of this.listeners.get(key) ?? []) listener();
  }
}

/**
 * A waiter's alarm clock: `arm()` before each attempt, then `sleep(ms)` returns early if the key was
 * released since — including between the attempt and the sleep, so no release is missed.
 */
export class ReleaseWatch {
  private released = false;
  private wake: (() => void) | undefined;
  private readonly unsubscribe: () => void;

  constructor(subscribe: (listener: () => void) => () => void) {
    this.unsubscribe = subscribe(() => {
      this.released = true;
      this.wake?.();
    });
  }

  arm(): void {
    this.released = false;
  }

  /** Resolves true when woken by a release, false when `ms` passed. */
  sleep(ms: number): Promise<boolean> {
    if (this.released) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        resolve(false);
      }, ms);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve(true);
      };
    });
  }

  close(): void {
    this.unsubscribe();
    this.wake?.();
  }
}
