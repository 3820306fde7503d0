import { Readable } from 'node:stream';
import { setImmediate as tick } from 'node:timers/promises';
import { LockLease, LockPort } from 'src/locking';
import { narReadLockKey, openUnderReadLock } from './lru.read-lock';

/** Records which shared locks are held. */
function fakeLocks(): { locks: LockPort; held: Set<string> } {
  const held = new Set<string>();
  const locks = {
    withReadLock: async <T>(key: string, _ttl: number, fn: (lease: LockLease) => Promise<T>): Promise<T> => {
      held.add(key);
      try {
        return await fn({ signal: new AbortController().signal });
      } finally {
        held.delete(key);
      }
    },
  } as unknown as LockPort;
  return { locks, held };
}

describe('narReadLockKey', () => {
  it('names the lock after the NAR hash, whatever its compression', () => {
    expect(narReadLockKey('nar/0abc.nar.xz')).toBe('cache:nar:0abc');
    expect(narReadLockKey('nar/0abc.nar')).toBe('cache:nar:0abc');
  });
});

describe('openUnderReadLock', () => {
  const key = 'nar/0abc.nar.xz';

  it('holds the shared lock until the stream has been read to the end', async () => {
    const { locks, held } = fakeLocks();
    const sut = await openUnderReadLock(locks, key, 1000, async () => ({ stream: Readable.from([Buffer.from('nar bytes')]) }));

    expect(held.has('cache:nar:0abc')).toBe(true);
    const chunks: Buffer[] = [];
    for await (const chunk of sut!.stream) chunks.push(chunk as Buffer);
    await tick();

    expect(Buffer.concat(chunks).toString()).toBe('nar bytes');
    expect(held.size).toBe(0);
  });

  it('releases the lock when the stream is destroyed (the client hung up)', async () => {
    const { locks, held } = fakeLocks();
    const sut = await openUnderReadLock(locks, key, 1000, async () => ({ stream: new Readable({ read() {} }) }));

    sut!.stream.destroy();
    await tick();

    expect(held.size).toBe(0);
  });

  it('releases the lock at once when there is nothing to read', async () => {
    const { locks, held } = fakeLocks();
    await expect(openUnderReadLock(locks, key, 1000, async () => null)).resolves.toBeNull();
    expect(held.size).toBe(0);
  });

  it('fails, without the lock, when opening fails', async () => {
    const { locks, held } = fakeLocks();
    await expect(
      openUnderReadLock(locks, key, 1000, async () => {
        throw new Error('storage down');
      }),
    ).rejects.toThrow('storage down');
    expect(held.size).toBe(0);
  });
});
