import { Logger } from '@nestjs/common';
import { LockUnavailableError } from 'src/common/errors';
import { ArtifactRepository, LruCandidateWithReferences, NarFileRepository, NarInfoRepository } from 'src/database';
import { LockPort } from 'src/locking';
import { PinsService, referencedHashes } from 'src/pins';
import { StoragePort } from 'src/storage';
import { ANY_AGE, ArtifactEviction } from './lru.artifacts';
import { EvictionCandidate, EvictionOrder } from './lru.closure';
import { narReadLockKey } from './lru.read-lock';

/** Rows read per query: enough to make queries rare, few enough that a batch is quick to work through. */
const BATCH_SIZE = 100;

/**
 * Narinfos the LRU reads as candidates at first, doubled each time it needs more (up to the cap):
 * each new page costs a pass over every stored References list, so the pages grow to keep those
 * passes few (about log2 of the candidates read).
 */
const FIRST_CANDIDATE_PAGE = 1000;
const MAX_CANDIDATE_PAGE = 64_000;

/** Rows per query of the pass over the stored References. */
const REFERENCE_PAGE = 1000;

/**
 * How long the LRU waits for the readers of a NAR before leaving it for the next run. Readers queue
 * behind a waiting writer, so this also bounds how long new clients of that NAR stall.
 */
const READER_WAIT_MS = 60_000;

/**
 * `nix copy` uploads a NAR before its narinfo. A NAR file that nothing points at yet is left alone this
 * long, so the LRU does not delete an upload whose narinfo is about to arrive.
 */
export const UPLOAD_GRACE_MS = 10 * 60_000;

export interface LruPassDeps {
  narInfos: NarInfoRepository;
  narFiles: NarFileRepository;
  storage: StoragePort;
  locks: LockPort;
  pins: PinsService;
  /** Listings, logs...: counted and evicted with the NARs when given (see ArtifactEviction). */
  artifacts?: ArtifactRepository;
}

export interface LruSummary {
  /** Narinfos deleted. */
  evictedEntries: number;
  /** NAR files deleted (a NAR shared by several narinfos counts once). */
  evictedNarFiles: number;
  /** Bytes of the NAR files deleted. */
  evictedBytes: number;
  sizeBefore: number;
  sizeAfter: number;
  /** The pass stopped before reaching the limit because `signal` aborted (lock lost, shutdown). */
  interrupted: boolean;
}

/**
 * One eviction pass down to `maxSize`, run by LruService while it holds the LRU lock. First the NAR
 * files no narinfo points at (no client can find them), oldest first; then the narinfos, each
 * followed by its NAR once no other narinfo uses it: never a pinned path or anything in its closure,
 * and dependants before their dependencies, least recently used first (see EvictionOrder). Stops as
 * soon as the stored size is within the limit, or when `signal` aborts.
 */
export class LruPass {
  private readonly logger = new Logger('LRU');
  private size = 0;
  private artifacts?: ArtifactEviction;
  private evictedEntries = 0;
  private evictedNarFiles = 0;
  private evictedBytes = 0;
  /** NARs a reader outlasted READER_WAIT_MS on: not tried again in this pass. */
  private readonly kept = new Set<string>();

  constructor(
    private readonly deps: LruPassDeps,
    private readonly maxSize: number,
    private readonly signal: AbortSignal,
  ) {}

  async run(): Promise<LruSummary> {
    const { artifacts, storage } = this.deps;
    this.artifacts = artifacts && new ArtifactEviction(artifacts, storage, (bytes) => (this.size -= bytes));
    const sizeBefore = await this.measure();
    await this.evictUnreferenced(Date.now() - UPLOAD_GRACE_MS);
    await this.evictLeastRecentlyUsed();
    return {
      evictedEntries: this.evictedEntries,
      evictedNarFiles: this.evictedNarFiles,
      evictedBytes: this.evictedBytes,
      sizeBefore,
      sizeAfter: await this.measure(),
      interrupted: this.signal.aborted,
    };
  }

  private async measure(): Promise<number> {
    this.size = (await this.deps.narFiles.sumStoredBytes()) + ((await this.artifacts?.sumStoredBytes()) ?? 0);
    return this.size;
  }

  private overLimit(): boolean {
    return this.size > this.maxSize && !this.signal.aborted;
  }

  private async evictUnreferenced(uploadedBefore: number): Promise<void> {
    while (this.overLimit()) {
      // Each call scans the table (see findUnreferenced): a short batch means there is no other.
      const files = await this.deps.narFiles.findUnreferenced(BATCH_SIZE);
      const due = files.filter((file) => file.lastAccessedAt < uploadedBefore && !this.kept.has(file.key));
      for (const file of due) {
        if (!this.overLimit()) return;
        await this.evictNarFile(file.key);
      }
      if (files.length < BATCH_SIZE || due.length === 0) return;
      await this.measure();
    }
  }

  private async evictLeastRecentlyUsed(): Promise<void> {
    if ((await this.measure()) <= this.maxSize || this.signal.aborted) return;
    const pinned = await this.pinnedClosure();
    const order = new EvictionOrder();
    let after: { lastAccessedAt: number; id: number } | null = null;
    let page = FIRST_CANDIDATE_PAGE;
    let allRead = false;
    while (this.overLimit()) {
      const next = order.next();
      if (next) {
        await this.artifacts?.evictUnownedBefore(next.lastAccessedAt, () => this.overLimit());
        if (!this.overLimit()) break;
        await this.evictNarInfo(next);
        order.evicted(next);
        continue;
      }
      if (allRead) break;
      // Every candidate read so far is still referred to: read the next least recently used ones.
      const rows = await this.deps.narInfos.findLeastRecentlyUsedAfter(after, page);
      allRead = rows.length < page;
      if (rows.length > 0) after = rows[rows.length - 1];
      order.add(rows.filter((row) => !pinned.has(row.hash)).map(toCandidate));
      await this.countReferrers(order);
      page = Math.min(page * 2, MAX_CANDIDATE_PAGE);
      // Sizes are measured again per page: other instances keep storing NARs while this pass runs.
      await this.measure();
    }
    // Everything was read and only candidates holding each other (a reference cycle) are left.
    for (const candidate of allRead ? order.waiting() : []) {
      if (!this.overLimit()) return;
      await this.evictNarInfo(candidate);
      order.evicted(candidate);
    }
    await this.artifacts?.evictUnownedBefore(ANY_AGE, () => this.overLimit());
  }

  /**
   * The hashes the pins protect in this run: the stored closures of the pins in force. Warns (once
   * per run) when they alone exceed the limit: they are kept anyway, and the cache stays over it.
   */
  private async pinnedClosure(): Promise<Set<string>> {
    const { pins, closure } = await this.deps.pins.protection(Date.now());
    if (pins === 0) return new Set();
    const pinnedBytes = await this.deps.narFiles.sumStoredBytesAmong([...closure.values()]);
    if (pinnedBytes > this.maxSize) {
      this.logger.warn(
        { pins, pinned_entries: closure.size, pinned_bytes: pinnedBytes, max_size: this.maxSize },
        'pinned closures alone exceed --cache-max-size; nothing pinned is evicted',
      );
    }
    return new Set(closure.keys());
  }

  /** Counts, over every stored narinfo's References, who refers to the candidates not yet evicted. */
  private async countReferrers(order: EvictionOrder): Promise<void> {
    order.beginCount();
    if (order.pending > 0) {
      let afterId = 0;
      for (;;) {
        const rows = await this.deps.narInfos.pageReferencesAfterId(afterId, REFERENCE_PAGE);
        for (const row of rows) order.countReferrer(row.hash, referencedHashes(row.refs, row.hash));
        if (rows.length < REFERENCE_PAGE || this.signal.aborted) break;
        afterId = rows[rows.length - 1].id;
      }
    }
    order.endCount();
  }

  /** Deletes a narinfo, then its NAR once no other narinfo points at it. */
  private async evictNarInfo(narinfo: EvictionCandidate): Promise<void> {
    // The narinfo goes first: a NAR is never deleted while a narinfo still points at it.
    if (await this.deps.narInfos.deleteByHash(narinfo.hash)) {
      this.evictedEntries += 1;
      await this.artifacts?.evictOwnedBy(narinfo.hash);
    }
    if (!this.kept.has(narinfo.url) && (await this.deps.narInfos.countByUrl(narinfo.url)) === 0) {
      await this.evictNarFile(narinfo.url);
    }
  }

  /** Deletes the NAR file `key` once nobody reads it: database row first, then the stored object. */
  private async evictNarFile(key: string): Promise<void> {
    const { narInfos, narFiles, storage, locks } = this.deps;
    let freed: number | null;
    try {
      freed = await locks.withLock(narReadLockKey(key), READER_WAIT_MS, async () => {
        // Checked again under the lock: a narinfo uploaded meanwhile may point at this NAR again.
        if ((await narInfos.countByUrl(key)) > 0) return null;
        const row = await narFiles.findByKey(key);
        if (!row) return null;
        // Row before object: a crash in between leaves an unreferenced object, never a row pointing at nothing.
        if (!(await narFiles.deleteByKey(key))) return null;
        await storage.delete(key);
        return row.fileSize;
      });
    } catch (e) {
      if (!(e instanceof LockUnavailableError && e.reason === 'timeout')) throw e;
      this.kept.add(key);
      this.logger.log({ key }, 'NAR still being read; left for the next LRU run');
      return;
    }
    if (freed === null) return;
    this.evictedNarFiles += 1;
    this.evictedBytes += freed;
    this.size -= freed;
  }
}

const toCandidate = (row: LruCandidateWithReferences): EvictionCandidate => ({
  id: row.id,
  hash: row.hash,
  url: row.url,
  lastAccessedAt: row.lastAccessedAt,
  refs: referencedHashes(row.refs, row.hash),
});
