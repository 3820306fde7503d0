import { ArtifactRepository, StoredArtifact } from 'src/database';
import { StoragePort } from 'src/storage';

/** Rows read per query. */
const BATCH_SIZE = 100;
/** An access time later than any: "whatever their age". */
export const ANY_AGE = Number.MAX_SAFE_INTEGER;

/**
 * The LRU's part for artifacts (src/cache/artifacts), whose bytes count against --cache-max-size
 * with the NARs'. A `.ls` belongs to its narinfo and goes with it (evictOwnedBy). Logs,
 * realisations, build traces, debuginfo, and listings whose narinfo is not stored, belong to no
 * narinfo: they go by their own last access, before any narinfo accessed later than them
 * (evictUnownedBefore, called with each narinfo's access time before that narinfo is evicted).
 * Row first, then object, as for NARs. Artifacts are small and read whole in one go, so they take
 * no read lock: a reader that loses the race sees its transfer break, and retries into a 404.
 */
export class ArtifactEviction {
  /** When the least recently accessed unowned artifact was accessed (Infinity: none); undefined: to read. */
  private oldestUnowned: number | undefined;

  constructor(
    private readonly artifacts: ArtifactRepository,
    private readonly storage: StoragePort,
    /** Told the bytes of each artifact deleted. */
    private readonly freed: (bytes: number) => void,
  ) {}

  sumStoredBytes(): Promise<number> {
    return this.artifacts.sumStoredBytes();
  }

  async evictOwnedBy(hash: string): Promise<void> {
    for (const artifact of await this.artifacts.findOwnedBy(hash)) await this.evict(artifact);
  }

  /** Evicts unowned artifacts last accessed before `before`, oldest first, while `overLimit()`. */
  async evictUnownedBefore(before: number, overLimit: () => boolean): Promise<void> {
    for (;;) {
      // One cheap query tells whether any is old enough: most calls stop here.
      this.oldestUnowned ??= (await this.artifacts.findUnownedAccessedBefore(ANY_AGE, 1))[0]?.lastAccessedAt ?? Infinity;
      if (this.oldestUnowned >= before || !overLimit()) return;
      this.oldestUnowned = undefined;
      for (const artifact of await this.artifacts.findUnownedAccessedBefore(before, BATCH_SIZE)) {
        if (!overLimit()) return;
        await this.evict(artifact);
      }
    }
  }

  private async evict(artifact: StoredArtifact): Promise<void> {
    if (!(await this.artifacts.deleteByPath(artifact.path))) return;
    await this.storage.delete(artifact.storageKey);
    this.freed(artifact.fileSize);
  }
}
