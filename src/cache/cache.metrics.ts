import { Injectable } from '@nestjs/common';
import { Counter, Registry } from 'prom-client';

export type CacheLookupKind = 'narinfo' | 'nar';
export type CacheLookupResult = 'hit' | 'miss';
/** A NAR download begun here, or one attached to because it was already running here. */
export type DownloadUse = 'started' | 'joined';
/**
 * What became of the NAR prefetch a narinfo miss starts: its download started (or joined if one was
 * running), the NAR found stored already, dropped (too many downloads waiting), or failed before its
 * first byte (storage or the upstream could not be asked).
 */
export type PrefetchResult = 'started' | 'already_stored' | 'dropped' | 'failed';

const KINDS: readonly CacheLookupKind[] = ['narinfo', 'nar'];
const RESULTS: readonly CacheLookupResult[] = ['hit', 'miss'];
const PREFETCH_RESULTS: readonly PrefetchResult[] = ['started', 'already_stored', 'dropped', 'failed'];

/**
 * What the cache itself does: lookups answered from what is stored (hit) or not (miss: fetched from
 * upstream, joined to a download in progress, or not found anywhere), NAR downloads started versus
 * joined (deduplication at work), bytes fetched from upstreams, narinfo misses answered from the
 * negative cache, and the NAR prefetches that narinfo misses start.
 */
@Injectable()
export class CacheMetrics {
  private readonly lookups: Counter<'kind' | 'result'>;
  private readonly downloads: Counter<'result'>;
  private readonly fetchedBytes: Counter<never>;
  private readonly missingObjects: Counter<never>;
  private readonly negativeHits: Counter<never>;
  private readonly prefetches: Counter<'result'>;
  /**
   * Lookups since the last scrape, added to `lookups` when it is collected: a cache hit then costs an
   * increment, not the hashing of its labels.
   */
  private readonly uncounted: Record<CacheLookupKind, Record<CacheLookupResult, number>> = {
    narinfo: { hit: 0, miss: 0 },
    nar: { hit: 0, miss: 0 },
  };

  constructor(registry: Registry) {
    const registers = [registry];
    this.lookups = new Counter({
      name: 'ncps_cache_requests_total',
      help: 'Narinfo and NAR lookups by kind (narinfo, nar) and result: hit (stored here) or miss (fetched, joined or not found)',
      labelNames: ['kind', 'result'],
      registers,
      collect: () => this.countLookups(),
    });
    this.downloads = new Counter({
      name: 'ncps_nar_downloads_total',
      help:
        'NAR downloads by result: started (a new upstream fetch) ' +
        'or joined (already running here: a client or a prefetch attached to it)',
      labelNames: ['result'],
      registers,
    });
    this.fetchedBytes = new Counter({
      name: 'ncps_fetched_bytes_total',
      help: 'NAR bytes received from upstream caches (failed and rejected downloads included)',
      registers,
    });
    this.missingObjects = new Counter({
      name: 'ncps_nar_missing_objects_total',
      help:
        'NAR requests that found the NAR recorded as stored (a nar_files row) but not in storage: ' +
        'fetched again from upstream, or 404 for an upload (drift: see ncps fsck)',
      registers,
    });
    this.negativeHits = new Counter({
      name: 'ncps_negative_cache_hits_total',
      help: 'Narinfo misses answered "not found" from the negative cache (--cache-negative-ttl), without asking the upstreams',
      registers,
    });
    this.prefetches = new Counter({
      name: 'ncps_nar_prefetches_total',
      help: 'NAR prefetches after a narinfo miss, by result: started (a download started or joined), already_stored, dropped, failed (before its first byte)',
      labelNames: ['result'],
      registers,
    });
    for (const kind of KINDS) for (const result of RESULTS) this.lookups.inc({ kind, result }, 0);
    for (const result of PREFETCH_RESULTS) this.prefetches.inc({ result }, 0);
    this.negativeHits.inc(0);
    this.downloads.inc({ result: 'started' }, 0);
    this.downloads.inc({ result: 'joined' }, 0);
    this.fetchedBytes.inc(0);
    this.missingObjects.inc(0);
  }

  lookup(kind: CacheLookupKind, result: CacheLookupResult): void {
    this.uncounted[kind][result]++;
  }

  private countLookups(): void {
    for (const kind of KINDS) {
      for (const result of RESULTS) {
        const count = this.uncounted[kind][result];
        if (count === 0) continue;
        this.uncounted[kind][result] = 0;
        this.lookups.inc({ kind, result }, count);
      }
    }
  }

  download(result: DownloadUse): void {
    this.downloads.inc({ result });
  }

  /** A NAR recorded as stored was not in storage: served as a miss (fetched again), counted here. */
  storedObjectMissing(): void {
    this.missingObjects.inc();
  }

  /** A narinfo miss answered "not found" from the negative cache, no upstream asked. */
  negativeHit(): void {
    this.negativeHits.inc();
  }

  prefetch(result: PrefetchResult): void {
    this.prefetches.inc({ result });
  }

  /** Bytes of a NAR received from an upstream, counted as they arrive (so a long download shows up while it runs). */
  fetched(bytes: number): void {
    this.fetchedBytes.inc(bytes);
  }
}
