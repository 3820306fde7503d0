import { Logger } from '@nestjs/common';
import { LockUnavailableError } from 'src/common/errors';
import { NarFileRepository, NarInfoRepository } from 'src/database';
import { LockPort } from 'src/locking';
import { StoragePort } from 'src/storage';
import { narReadLockKey } from './lru.read-lock';

/** Rows read per query: enough to make queries rare, few enough that a batch is quick to work through. */
const BATCH_SIZE = 100;

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
 * files no narinfo points at (no client can find them), oldest first; then the least recently used
 * narinfos, each followed by its NAR once no other narinfo uses it. Stops as soon as the stored size
 * is within the limit, or when `signal` aborts.
 */
export class LruPass {
  private readonly logger = new Logger('LRU');
  private size = 0;
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
    this.size = await this.deps.narFiles.sumStoredBytes();
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
    // Sizes are measured again per batch: other instances keep storing NARs while this pass runs.
    while ((await this.measure()) > this.maxSize && !this.signal.aborted) {
      const batch = await this.deps.narInfos.findLeastRecentlyUsed(BATCH_SIZE);
      if (batch.length === 0) return;
      for (const narinfo of batch) {
        if (!this.overLimit()) return;
        // The narinfo goes first: a NAR is never deleted while a narinfo still points at it.
        if (await this.deps.narInfos.deleteByHash(narinfo.hash)) this.evictedEntries += 1;
        if (!this.kept.has(narinfo.url) && (await this.deps.narInfos.countByUrl(narinfo.url)) === 0) {
          await this.evictNarFile(narinfo.url);
        }
      }
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
