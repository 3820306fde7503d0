import { Logger } from '@nestjs/common';
import { Registry } from 'prom-client';
import { LockUnavailableError } from 'src/common/errors';
import { LockMetrics } from '../lock.metrics';
import { LockTelemetry } from '../lock.telemetry';
import { gate } from 'test/support/fake-path';
import { sleep } from 'test/support/wait';
import { LocalLockProvider } from './local.lock';

describe('LocalLockProvider', () => {
  let registry: Registry;
  let sut: LocalLockProvider;

  beforeAll(() => Logger.overrideLogger(false));

  beforeEach(() => {
    registry = new Registry();
    sut = new LocalLockProvider(new LockTelemetry(new LockMetrics(registry)));
  });

  it('lets one holder in at a time', async () => {
    let inside = 0;
    let most = 0;
    await Promise.all(
      Array.from({ length: 20 }, () =>
        sut.withLock('download:nar:a', 5000, async () => {
          most = Math.max(most, ++inside);
          await sleep(1);
          inside -= 1;
        }),
      ),
    );
    expect(most).toBe(1);
  });

  it('keeps distinct keys independent', async () => {
    let inside = 0;
    let most = 0;
    await Promise.all(
      ['a', 'b', 'c'].map((key) =>
        sut.withLock(key, 5000, async () => {
          most = Math.max(most, ++inside);
          await sleep(20);
          inside -= 1;
        }),
      ),
    );
    expect(most).toBe(3);
  });

  it('lets readers in together, and a writer only when they are gone', async () => {
    const events: string[] = [];
    const reader = (name: string): Promise<void> =>
      sut.withReadLock('k', 5000, async () => {
        events.push(`${name} in`);
        await sleep(30);
        events.push(`${name} out`);
      });
    const readers = [reader('r1'), reader('r2')];
    await sleep(5);
    await Promise.all([...readers, sut.withLock('k', 5000, async () => void events.push('writer'))]);
    expect(events).toEqual(['r1 in', 'r2 in', 'r1 out', 'r2 out', 'writer']);
  });

  it('does not starve a writer: readers arriving after it wait behind it', async () => {
    const events: string[] = [];
    const first = sut.withReadLock('k', 5000, async () => {
      await sleep(30);
      events.push('r1 out');
    });
    await sleep(5);
    const writer = sut.withLock('k', 5000, async () => void events.push('writer'));
    const late = sut.withReadLock('k', 5000, async () => void events.push('late reader'));
    await Promise.all([first, writer, late]);
    expect(events).toEqual(['r1 out', 'writer', 'late reader']);
  });

  it('reports a held lock to tryWithLock without running fn', async () => {
    let ran = false;
    await sut.withLock('lru', 5000, async () => {
      await expect(sut.tryWithLock('lru', 5000, async () => (ran = true))).resolves.toEqual({ acquired: false });
    });
    expect(ran).toBe(false);
    await expect(sut.tryWithLock('lru', 5000, async () => 42)).resolves.toEqual({ acquired: true, value: 42 });
  });

  it('gives up waiting after the TTL with a timeout error while the holder still holds, and counts it', async () => {
    const held = gate();
    const holder = sut.withLock('download:nar:x', 5000, () => held.wait);
    // The holder never lets go before the waiter's verdict: only its own TTL can end the wait.
    const error = await sut.withLock('download:nar:x', 50, async () => undefined).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LockUnavailableError);
    expect((error as LockUnavailableError).reason).toBe('timeout');
    held.open();
    await holder;
    expect(await registry.metrics()).toContain('ncps_lock_failures_total{type="download",reason="timeout",mode="local"} 1');
  });

  it('lets readers queued behind a writer that timed out in, while the first reader still reads', async () => {
    const reading = gate();
    let firstReaderDone = false;
    const reader = sut.withReadLock('k', 5000, () => reading.wait).then(() => (firstReaderDone = true));
    await sleep(5);
    const writer = sut.withLock('k', 20, async () => undefined).catch(() => 'timed out');
    const late = sut.withReadLock('k', 5000, async () => firstReaderDone);
    expect(await writer).toBe('timed out');
    // The late reader shares the lock with the first one, which is still inside.
    expect(await late).toBe(false);
    reading.open();
    await reader;
  });

  it('releases when fn throws, and keeps no entry for idle keys', async () => {
    await expect(sut.withLock('k', 1000, async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await sut.withLock('k', 1000, async () => undefined);
    await sut.withLock('other', 1000, () => sut.withLock('k', 10, async () => undefined));
    await sut.withLock('k', 1000, () => sut.withLock('k', 10, async () => undefined)).catch(() => undefined);
    expect(sut.activeKeys).toBe(0);
  });

  it('measures acquisitions and hold times', async () => {
    await sut.withLock('download:nar:h', 1000, () => sleep(20));
    const text = await registry.metrics();
    expect(text).toContain('ncps_lock_acquisitions_total{type="download",result="success",mode="local"} 1');
    expect(text).toContain('ncps_lock_hold_duration_seconds_count{type="download",mode="local"} 1');
  });
});
