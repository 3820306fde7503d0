import { LockUnavailableError } from 'src/common/errors';
import { LockPort, downloadNarKey, narKeyHash } from 'src/locking';
import { narReadLockKey } from 'src/lru';

/**
 * How long a repair waits for the readers of a NAR, as the LRU does; a NAR read for longer is left
 * for the next run.
 */
export const READER_WAIT_MS = 60_000;

export type Guarded<T> = { ran: true; value: T } | { ran: false; why: string };

/**
 * Runs `fn` on the NAR `key` only when nothing else is at work on it: no download or upload of it
 * holds its download lock (not waited for: the key is skipped), and no reader streams it (waited for,
 * holding its read lock exclusively, exactly as the LRU does before deleting). `fn` must re-check
 * what it acts on: the state may have changed before the locks were taken.
 */
export async function whileUnused<T>(locks: LockPort, key: string, ttlMs: number, fn: () => Promise<T>): Promise<Guarded<T>> {
  try {
    const result = await locks.tryWithLock(downloadNarKey(narKeyHash(key)), ttlMs, () =>
      locks.withLock(narReadLockKey(key), READER_WAIT_MS, fn),
    );
    return result.acquired ? { ran: true, value: result.value } : { ran: false, why: 'being downloaded or uploaded; left alone' };
  } catch (e) {
    if (e instanceof LockUnavailableError && e.reason === 'timeout') return { ran: false, why: 'still being read; left alone' };
    throw e;
  }
}
