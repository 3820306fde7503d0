import { Logger } from '@nestjs/common';
import { Readable, finished } from 'node:stream';
import { errorMessage } from 'src/common/error-fields';
import { LockPort, narKeyHash, narReadKey } from 'src/locking';

const logger = new Logger('LRU');

/**
 * The lock guarding the stored NAR `key` (`nar/<hash>.nar[.ext]`): shared while it is read, taken
 * exclusively by the LRU before deleting it. Serving and eviction both name it through this function.
 */
export function narReadLockKey(key: string): string {
  return narReadKey(narKeyHash(key));
}

/**
 * Opens a stored NAR (`open` returns null when it is not there) holding the shared lock of `key`
 * until the stream ends, fails or is destroyed (fastify destroys it when the client hangs up). The
 * lock is taken before opening: a NAR the LRU is deleting is waited for and then found absent, and
 * the LRU waits for every stream already open before it deletes anything.
 */
export function openUnderReadLock<T extends { stream: Readable }>(
  locks: LockPort,
  key: string,
  ttlMs: number,
  open: () => Promise<T | null>,
): Promise<T | null> {
  return new Promise<T | null>((resolve, reject) => {
    let opened = false;
    locks
      .withReadLock(narReadLockKey(key), ttlMs, async () => {
        const body = await open();
        opened = true;
        resolve(body);
        if (body) await new Promise<void>((done) => finished(body.stream, () => done()));
      })
      .catch((e: unknown) => {
        if (!opened) reject(e instanceof Error ? e : new Error(errorMessage(e)));
        // The stream is already with the client; a lock lost or released badly afterwards is not its problem.
        else logger.warn({ err: e, key }, 'the read lock of a served NAR failed');
      });
  });
}
