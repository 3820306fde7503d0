import { errorMessage } from 'src/common/error-fields';
import { StoragePort, StoredObject } from './storage.port';

export interface MigrateStorageOptions {
  log?: (message: string) => void;
  /** Lists what would be copied (counted in `copied` and `bytes`) without writing anything. */
  dryRun?: boolean;
}

export interface MigrateStorageResult {
  copied: number;
  /** Already on the target with the same size (a previous run's work), or gone from the source. */
  skipped: number;
  /** On the target with another size, or wrong after copying; each is logged. Exit non-zero. */
  failed: number;
  bytes: number;
}

/** Copies overlap a little so that per-request latency (S3) does not dominate; memory stays bounded. */
const CONCURRENCY = 4;
const PROGRESS_EVERY = 1000;

/**
 * Copies every object of `from` to `to`, streaming, and verifies each copy's size on the target.
 * Resumable: an object already on the target with the right size is skipped, so an interrupted run is
 * simply run again. Nothing on the target is ever overwritten or deleted: a size conflict is reported.
 */
export async function migrateStorage(
  from: StoragePort,
  to: StoragePort,
  options: MigrateStorageOptions = {},
): Promise<MigrateStorageResult> {
  const log = options.log ?? (() => undefined);
  // A missing bucket or wrong credentials should stop the run with check()'s explanation, up front.
  await Promise.all([from.check(), to.check()]);
  const result: MigrateStorageResult = { copied: 0, skipped: 0, failed: 0, bytes: 0 };
  const objects = from.list()[Symbol.asyncIterator]();
  let processed = 0;

  // Workers share one listing; async iterators queue concurrent next() calls.
  const worker = async () => {
    for (let next = await objects.next(); !next.done; next = await objects.next()) {
      try {
        await migrateOne(next.value);
      } catch (error) {
        result.failed += 1;
        log(`${next.value.key}: ${errorMessage(error)}`);
      }
      processed += 1;
      if (processed % PROGRESS_EVERY === 0) log(progress(processed, result));
    }
  };

  const migrateOne = async (object: StoredObject) => {
    const existing = await to.head(object.key);
    if (existing) {
      if (existing.size === object.size) {
        result.skipped += 1;
        return;
      }
      throw new Error(`already on the target with ${existing.size} bytes instead of ${object.size}; left untouched`);
    }
    if (options.dryRun) {
      log(`would copy ${object.key} (${object.size} bytes)`);
      result.copied += 1;
      result.bytes += object.size;
      return;
    }
    const source = await from.read(object.key);
    if (!source) {
      // Evicted or deleted since it was listed: nothing to migrate any more.
      log(`${object.key}: gone from the source, skipped`);
      result.skipped += 1;
      return;
    }
    await to.put(object.key, source);
    const stored = await to.head(object.key);
    if (stored?.size !== object.size) {
      throw new Error(`copied, but the target holds ${stored ? `${stored.size} bytes` : 'nothing'} instead of ${object.size}`);
    }
    result.copied += 1;
    result.bytes += object.size;
  };

  // allSettled: a listing failure must not return while other workers are still copying.
  const outcomes = await Promise.allSettled(Array.from({ length: CONCURRENCY }, worker));
  const listingFailure = outcomes.find((outcome) => outcome.status === 'rejected');
  if (listingFailure) throw listingFailure.reason;
  log(progress(processed, result));
  return result;
}

function progress(processed: number, r: MigrateStorageResult): string {
  return `${processed} objects: ${r.copied} copied (${r.bytes} bytes), ${r.skipped} skipped, ${r.failed} failed`;
}
