import { Inject, Injectable } from '@nestjs/common';
import { NCPS_CONFIG } from 'src/config/config.module';
import { NcpsConfig } from 'src/config/config';

/** A held slot; `release` is idempotent, so it can sit in a `finally` next to other cleanup. */
export interface DownloadSlot {
  release(): void;
}

/** Who wants to download: a client waiting for the bytes, or a background prefetch nobody waits for. */
export type DownloadPriority = 'client' | 'prefetch';

interface Waiter {
  grant: (slot: DownloadSlot | null) => void;
}

/** Prefetches waiting for a slot, at most this many per slot; beyond, the oldest is dropped. */
const PREFETCH_QUEUE_PER_SLOT = 4;

/**
 * The global cap on upstream NAR downloads running at once in this process. Client requests wait
 * for a slot in arrival order. Prefetches only ever take a slot no client waits for, hold at most
 * half of the slots (so a burst of narinfo misses never makes clients wait behind speculative
 * work), and wait in a bounded queue: when it is full the oldest prefetch is dropped — it was
 * started by a narinfo miss long ago, so its client has most likely asked for the NAR already.
 * Waiting clients are not bounded here: each is an open request, bounded by the server's connections.
 */
@Injectable()
export class DownloadSlots {
  private readonly capacity: number;
  private readonly prefetchCapacity: number;
  private readonly prefetchQueueLimit: number;
  private running = 0;
  private runningPrefetches = 0;
  private readonly clients: Waiter[] = [];
  private readonly prefetches: Waiter[] = [];

  constructor(@Inject(NCPS_CONFIG) config: NcpsConfig) {
    this.capacity = config.upstream.maxConcurrentDownloads;
    this.prefetchCapacity = Math.ceil(this.capacity / 2);
    this.prefetchQueueLimit = this.capacity * PREFETCH_QUEUE_PER_SLOT;
  }

  /** A slot for a client download; waits as long as it takes. */
  async acquire(priority: 'client'): Promise<DownloadSlot>;
  /** A slot for a prefetch, or null when the prefetch was dropped (the caller then does nothing). */
  async acquire(priority: 'prefetch'): Promise<DownloadSlot | null>;
  async acquire(priority: DownloadPriority): Promise<DownloadSlot | null> {
    if (this.canStart(priority)) return this.take(priority);
    return new Promise((grant) => {
      if (priority === 'client') {
        this.clients.push({ grant });
        return;
      }
      if (this.prefetches.length >= this.prefetchQueueLimit) this.prefetches.shift()?.grant(null);
      this.prefetches.push({ grant });
    });
  }

  /** For metrics and tests: downloads running and waiting. */
  get stats(): { running: number; runningPrefetches: number; waitingClients: number; waitingPrefetches: number } {
    return {
      running: this.running,
      runningPrefetches: this.runningPrefetches,
      waitingClients: this.clients.length,
      waitingPrefetches: this.prefetches.length,
    };
  }

  private canStart(priority: DownloadPriority): boolean {
    if (this.running >= this.capacity) return false;
    if (priority === 'client') return true;
    return this.clients.length === 0 && this.runningPrefetches < this.prefetchCapacity;
  }

  private take(priority: DownloadPriority): DownloadSlot {
    this.running += 1;
    if (priority === 'prefetch') this.runningPrefetches += 1;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.running -= 1;
        if (priority === 'prefetch') this.runningPrefetches -= 1;
        this.wakeNext();
      },
    };
  }

  private wakeNext(): void {
    while (this.clients.length > 0 && this.canStart('client')) this.clients.shift()!.grant(this.take('client'));
    while (this.prefetches.length > 0 && this.canStart('prefetch')) this.prefetches.shift()!.grant(this.take('prefetch'));
  }
}
