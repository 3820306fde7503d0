/** Gives the lock back; calling it again does nothing. */
export type Release = () => void;

interface Waiter {
  readonly shared: boolean;
  readonly grant: () => void;
}

interface Entry {
  readers: number;
  writer: boolean;
  /** FIFO: a reader that arrives after a waiting writer queues behind it, so writers are not starved. */
  readonly queue: Waiter[];
}

/**
 * Per-key asynchronous read/write locks for one process. Entries exist only while someone holds or
 * waits for a key, so the map never grows with the number of keys ever used, and distinct keys never
 * share a lock (no sharding).
 */
export class KeyedRwMutex {
  private readonly entries = new Map<string, Entry>();

  /** Keys currently held or waited for. */
  get size(): number {
    return this.entries.size;
  }

  tryAcquire(key: string, shared: boolean): Release | null {
    const entry = this.entry(key);
    if (!this.grantable(entry, shared)) {
      this.dropIfIdle(key, entry);
      return null;
    }
    return this.take(key, entry, shared);
  }

  /** Waits for the lock until `deadline` (epoch ms); null when the deadline passed first. */
  acquire(key: string, shared: boolean, deadline: number): Promise<Release | null> {
    const entry = this.entry(key);
    if (this.grantable(entry, shared)) return Promise.resolve(this.take(key, entry, shared));
    return new Promise((resolve) => {
      const waiter: Waiter = {
        shared,
        grant: () => {
          clearTimeout(timer);
          resolve(this.take(key, entry, shared));
        },
      };
      const timer = setTimeout(
        () => {
          entry.queue.splice(entry.queue.indexOf(waiter), 1);
          // A writer leaving the head of the queue may let the readers behind it in.
          this.drain(key, entry);
          resolve(null);
        },
        Math.max(0, deadline - Date.now()),
      );
      entry.queue.push(waiter);
    });
  }

  private entry(key: string): Entry {
    let entry = this.entries.get(key);
    if (!entry) {
      entry = { readers: 0, writer: false, queue: [] };
      this.entries.set(key, entry);
    }
    return entry;
  }

  private grantable(entry: Entry, shared: boolean): boolean {
    return entry.queue.length === 0 && this.free(entry, shared);
  }

  private free(entry: Entry, shared: boolean): boolean {
    return shared ? !entry.writer : !entry.writer && entry.readers === 0;
  }

  private take(key: string, entry: Entry, shared: boolean): Release {
    if (shared) entry.readers += 1;
    else entry.writer = true;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (shared) entry.readers -= 1;
      else entry.writer = false;
      this.drain(key, entry);
    };
  }

  /** Grants the head of the queue: one writer, or every reader up to the next writer. */
  private drain(key: string, entry: Entry): void {
    while (entry.queue.length > 0 && this.free(entry, entry.queue[0].shared)) {
      const waiter = entry.queue.shift() as Waiter;
      waiter.grant();
      if (!waiter.shared) break;
    }
    this.dropIfIdle(key, entry);
  }

  private dropIfIdle(key: string, entry: Entry): void {
    if (entry.readers === 0 && !entry.writer && entry.queue.length === 0) this.entries.delete(key);
  }
}
