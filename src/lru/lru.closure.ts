/** A narinfo the LRU may evict, with the hashes its References name (itself left out). */
export interface EvictionCandidate {
  id: number;
  hash: string;
  /** The NAR it points at (= nar_files.key). */
  url: string;
  lastAccessedAt: number;
  refs: readonly string[];
}

interface Entry {
  candidate: EvictionCandidate;
  /** Stored narinfos referring to it, as last counted, minus those evicted since. */
  referrers: number;
  evicted: boolean;
}

/** Oldest first: by last access, then by row id (insertion order), as findLeastRecentlyUsed orders. */
const older = (a: EvictionCandidate, b: EvictionCandidate): number => a.lastAccessedAt - b.lastAccessedAt || a.id - b.id;

/**
 * The order of eviction within one LRU run: dependants before their dependencies. A candidate is
 * released only once no stored narinfo refers to it; released candidates go least recently used
 * first. So a path leaves the cache only after every stored path whose closure contains it, and the
 * cache never holds a narinfo whose References it has dropped (see docs/lru.md).
 *
 * Equivalently, each path is evicted by its *effective* recency: the most recent access of any
 * stored path whose closure contains it. The least effectively recent path is always one that nothing
 * refers to, and its own access is its effective recency.
 *
 * Who refers to the candidates is counted by a pass over all stored References (countReferrer between
 * beginCount and endCount), made again whenever candidates are added; evictions are then accounted
 * for here without asking the database again.
 */
export class EvictionOrder {
  private readonly entries = new Map<string, Entry>();
  /** Released candidates, the oldest last (popped). */
  private released: Entry[] = [];

  /** Candidates already known (read again by a later page) are ignored. */
  add(candidates: readonly EvictionCandidate[]): void {
    for (const candidate of candidates) {
      if (!this.entries.has(candidate.hash)) this.entries.set(candidate.hash, { candidate, referrers: 0, evicted: false });
    }
  }

  beginCount(): void {
    for (const entry of this.entries.values()) entry.referrers = 0;
    this.released = [];
  }

  /** The stored narinfo `hash` refers to `refs`: each of them that is a candidate has a referrer. */
  countReferrer(hash: string, refs: readonly string[]): void {
    for (const ref of refs) {
      const entry = ref === hash ? undefined : this.entries.get(ref);
      if (entry && !entry.evicted) entry.referrers += 1;
    }
  }

  endCount(): void {
    this.released = [...this.entries.values()]
      .filter((e) => !e.evicted && e.referrers === 0)
      .sort((a, b) => older(b.candidate, a.candidate));
  }

  /** The next candidate to evict, or undefined when every one left is still referred to. */
  next(): EvictionCandidate | undefined {
    return this.released.pop()?.candidate;
  }

  /** `candidate` is gone: what only it referred to is released. */
  evicted(candidate: EvictionCandidate): void {
    const entry = this.entries.get(candidate.hash);
    if (!entry || entry.evicted) return;
    entry.evicted = true;
    for (const ref of candidate.refs) {
      const dependency = ref === candidate.hash ? undefined : this.entries.get(ref);
      if (!dependency || dependency.evicted) continue;
      dependency.referrers -= 1;
      if (dependency.referrers === 0) this.release(dependency);
    }
  }

  /**
   * The candidates still referred to, oldest first, for when every stored narinfo has been read and
   * the cache is still over its limit: only References that form a cycle (which Nix never makes, an
   * upload could) or come from narinfos stored during the run can hold them then.
   */
  waiting(): EvictionCandidate[] {
    return [...this.entries.values()]
      .filter((e) => !e.evicted)
      .map((e) => e.candidate)
      .sort(older);
  }

  /** Candidates read so far and not evicted: what a count must be made for. */
  get pending(): number {
    let count = 0;
    for (const entry of this.entries.values()) if (!entry.evicted) count += 1;
    return count;
  }

  private release(entry: Entry): void {
    // Kept sorted newest first; binary search for the insertion point.
    let low = 0;
    let high = this.released.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (older(this.released[mid].candidate, entry.candidate) > 0) low = mid + 1;
      else high = mid;
    }
    this.released.splice(low, 0, entry);
  }
}
