import { Logger } from '@nestjs/common';
import { LockUnavailableError } from 'src/common/errors';
import { LockPort } from 'src/locking';
import { RetryPolicy } from 'src/locking/lock.backoff';
import { sleep } from 'test/support/lock-services';

export interface VanishingHolder {
  /** The holder disappears without releasing (its instance crashed, its connection died). */
  vanish(): Promise<void>;
  /** When, counted from vanish(), the lock must become free: [not before, at the latest] in ms. */
  readonly freedWithinMs: readonly [number, number];
}

/** How a backend is set up for the shared contract below. */
export interface LockFixture {
  /** `count` instances sharing one backend, as separate ncps instances would (local: the same one). */
  instances(count: number, retry?: RetryPolicy): Promise<LockPort[]>;
  /** `key` held by a holder of another instance, which is about to vanish. */
  holdAndVanish(key: string, ttlMs: number): Promise<VanishingHolder>;
  /** Closes what instances() and holdAndVanish() opened. */
  closeAll(): Promise<void>;
}

/** Polling so slow that only a release notification can explain a prompt acquisition. */
const NO_POLLING: RetryPolicy = { maxAttempts: 3, initialDelayMs: 5000, maxDelayMs: 5000, jitter: false };

/** Resolves with `promise`, or fails the test with `message` after `ms`. */
async function within<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** A holder that stays inside until told to leave. */
function heldUntilReleased(): { entered: Promise<void>; enter: () => void; leave: () => void; left: Promise<void> } {
  let enter!: () => void;
  let leave!: () => void;
  const entered = new Promise<void>((resolve) => (enter = resolve));
  const left = new Promise<void>((resolve) => (leave = resolve));
  return { entered, enter, leave, left };
}

/**
 * The contract every LockPort provider keeps (local, Redis, PostgreSQL), checked against the real backend.
 */
export function describeLockConformance(name: string, makeFixture: () => LockFixture): void {
  describe(`${name} provider: lock conformance`, () => {
    let fixture: LockFixture;
    let key: string;
    let n = 0;

    beforeAll(() => Logger.overrideLogger(false));
    beforeEach(() => {
      fixture = makeFixture();
      key = `download:nar:conformance${++n}`;
    });
    afterEach(() => fixture.closeAll());

    it('lets one holder in at a time under contention, across instances', async () => {
      const ports = await fixture.instances(3);
      let inside = 0;
      let most = 0;
      let done = 0;
      await Promise.all(
        ports.flatMap((port) =>
          Array.from({ length: 8 }, () =>
            port.withLock(key, 10_000, async ({ signal }) => {
              most = Math.max(most, ++inside);
              await sleep(2);
              expect(signal.aborted).toBe(false);
              inside -= 1;
              done += 1;
            }),
          ),
        ),
      );
      expect(most).toBe(1);
      expect(done).toBe(24);
    });

    it('lets readers in together, across instances', async () => {
      const ports = await fixture.instances(3);
      const readers = 6;
      let inside = 0;
      let allIn!: () => void;
      const together = new Promise<void>((resolve) => (allIn = resolve));
      await Promise.all(
        ports.flatMap((port) =>
          [1, 2].map(() =>
            port.withReadLock(key, 10_000, async () => {
              if (++inside === readers) allIn();
              await within(together, 3000, `only ${inside} of ${readers} readers got in together`);
            }),
          ),
        ),
      );
    });

    it('keeps a writer apart from readers and from other writers', async () => {
      const ports = await fixture.instances(3);
      let readers = 0;
      let writers = 0;
      const violations: string[] = [];
      await Promise.all(
        ports.flatMap((port, i) =>
          Array.from({ length: 6 }, (_, j) =>
            (i + j) % 3 === 0
              ? port.withLock(key, 10_000, async () => {
                  if (readers > 0 || writers > 0) violations.push(`writer entered with ${readers} readers, ${writers} writers`);
                  writers += 1;
                  await sleep(3);
                  writers -= 1;
                })
              : port.withReadLock(key, 10_000, async () => {
                  if (writers > 0) violations.push('reader entered with a writer inside');
                  readers += 1;
                  await sleep(3);
                  readers -= 1;
                }),
          ),
        ),
      );
      expect(violations).toEqual([]);
    });

    it('does not starve a waiting writer with a stream of overlapping readers', async () => {
      const ports = await fixture.instances(3);
      let stop = false;
      const readLoop = async (port: LockPort): Promise<void> => {
        const running: Promise<void>[] = [];
        while (!stop) {
          running.push(port.withReadLock(key, 10_000, () => sleep(60)));
          await sleep(20);
        }
        await Promise.all(running);
      };
      const loops = [readLoop(ports[0]), readLoop(ports[1])];
      await sleep(200); // lets the stream of readers get going (a setup pause, nothing is asserted on it)
      // The readers never stop on their own: a starved writer would fail with a timeout after its
      // 10 s TTL. Getting in at all, while they keep coming, is the evidence (no timing bound).
      let readersStillComing = false;
      await ports[2].withLock(key, 10_000, async () => void (readersStillComing = !stop));
      stop = true;
      await Promise.all(loops);
      expect(readersStillComing).toBe(true);
    });

    it('tells tryWithLock that the lock is held, without running fn', async () => {
      const [a, b] = await fixture.instances(2);
      let ran = false;
      await a.withLock(key, 10_000, async () => {
        await expect(b.tryWithLock(key, 10_000, async () => (ran = true))).resolves.toEqual({ acquired: false });
        await expect(a.tryWithLock(key, 10_000, async () => (ran = true))).resolves.toEqual({ acquired: false });
      });
      await a.withReadLock(key, 10_000, async () => {
        await expect(b.tryWithLock(key, 10_000, async () => (ran = true))).resolves.toEqual({ acquired: false });
      });
      expect(ran).toBe(false);
      await expect(b.tryWithLock(key, 10_000, async () => 7)).resolves.toEqual({ acquired: true, value: 7 });
    });

    it('waits no longer than the TTL, then fails with a timeout', async () => {
      const [a, b] = await fixture.instances(2);
      const holder = heldUntilReleased();
      const held = a.withLock(key, 10_000, async () => {
        holder.enter();
        await holder.left;
      });
      await holder.entered;
      const started = Date.now();
      const error = await b.withLock(key, 300, async () => undefined).catch((e: unknown) => e);
      const waited = Date.now() - started;
      holder.leave();
      await held;
      expect(error).toBeInstanceOf(LockUnavailableError);
      expect(error).toMatchObject({ reason: 'timeout' });
      expect(waited).toBeGreaterThanOrEqual(280);
      // The holder never leaves on its own: only the TTL ends the wait. Ten times it, a margin for a loaded machine.
      expect(waited).toBeLessThan(3000);
    });

    it('frees a lock whose holder vanished', async () => {
      const [sut] = await fixture.instances(1);
      const ttlMs = 1000;
      const holder = await fixture.holdAndVanish(key, ttlMs);
      await expect(sut.tryWithLock(key, ttlMs, async () => undefined)).resolves.toEqual({ acquired: false });
      const vanished = Date.now();
      await holder.vanish();
      const acquired = await sut.withLock(key, 10_000, async () => Date.now());
      const [notBefore, atTheLatest] = holder.freedWithinMs;
      expect(acquired - vanished).toBeGreaterThanOrEqual(notBefore);
      expect(acquired - vanished).toBeLessThan(atTheLatest);
    });

    it('keeps the lock while fn runs three times its TTL', async () => {
      const [a, b] = await fixture.instances(2);
      const ttlMs = 600;
      const holder = heldUntilReleased();
      let contenderGotIn = 0;
      let leftAt = 0;
      const held = a.withLock(key, ttlMs, async ({ signal }) => {
        holder.enter();
        // Proves that the contender does NOT get in while fn runs past the TTL: no event exists for that,
        // so the holder keeps trying it for three TTLs.
        for (let elapsed = 0; elapsed < 3 * ttlMs; elapsed += 100) {
          if ((await b.tryWithLock(key, ttlMs, async () => undefined)).acquired) contenderGotIn += 1;
          await sleep(100);
        }
        leftAt = Date.now();
        return signal.aborted;
      });
      await holder.entered;
      const waiter = b.withLock(key, 10 * ttlMs, async () => Date.now());
      expect(await held).toBe(false);
      expect(contenderGotIn).toBe(0);
      expect(await waiter).toBeGreaterThanOrEqual(leftAt);
    });

    // Polling is effectively off (NO_POLLING: 5 s between attempts), so only a release notification can
    // wake the waiters within 4 s of the release (polling would take at least 4.7 s: 5 s from a first
    // attempt made before the holder's 300 ms were over).
    it.each([
      ['a waiting writer', 'the writer holding the lock', 'write', ['write']],
      ['a waiting writer', 'the last reader', 'read', ['write']],
      ['waiting readers', 'the writer', 'write', ['read', 'read']],
    ] as const)('wakes %s promptly when %s leaves', async (_waiters, _holder, held, waiting) => {
      const [a, b] = await fixture.instances(2, NO_POLLING);
      const holder = heldUntilReleased();
      let releasedAt = 0;
      const take = held === 'write' ? a.withLock.bind(a) : a.withReadLock.bind(a);
      const holding = take(key, 30_000, async () => {
        holder.enter();
        await sleep(300);
        releasedAt = Date.now();
      });
      await holder.entered;
      const acquired = await Promise.all(
        waiting.map((mode) =>
          mode === 'write' ? b.withLock(key, 30_000, async () => Date.now()) : b.withReadLock(key, 30_000, async () => Date.now()),
        ),
      );
      await holding;
      for (const at of acquired) expect(at - releasedAt).toBeLessThan(4000);
    });
  });
}
