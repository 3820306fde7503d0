import { testConfig } from 'test/support/config';
import { DownloadSlot, DownloadSlots } from './download-slots';

const slotsFor = (maxConcurrentDownloads: number) =>
  new DownloadSlots(testConfig({ 'cache-upstream-max-concurrent-downloads': String(maxConcurrentDownloads) }));

/** Resolves with what `promise` settled to by now, or 'pending'. */
async function settled<T>(promise: Promise<T>): Promise<T | 'pending'> {
  return Promise.race([promise, new Promise<'pending'>((resolve) => setImmediate(() => resolve('pending')))]);
}

describe('DownloadSlots', () => {
  it('grants up to the cap at once and makes the next client wait for a release', async () => {
    const sut = slotsFor(2);
    const first = await sut.acquire('client');
    await sut.acquire('client');
    const third = sut.acquire('client');

    expect(await settled(third)).toBe('pending');
    first.release();
    expect(await settled(third)).toEqual(expect.objectContaining({ release: expect.any(Function) }));
    expect(sut.stats.running).toBe(2);
  });

  it('serves waiting clients before waiting prefetches, whatever the arrival order', async () => {
    const sut = slotsFor(2);
    const held = [await sut.acquire('client'), await sut.acquire('client')];
    const order: string[] = [];
    const prefetch = sut.acquire('prefetch').then((s) => (order.push('prefetch'), s));
    const client = sut.acquire('client').then((s) => (order.push('client'), s));

    held[0].release();
    (await client).release();
    await prefetch;

    expect(order).toEqual(['client', 'prefetch']);
  });

  it('never lets prefetches hold more than half of the slots, so a client always finds one', async () => {
    const sut = slotsFor(4);
    const prefetches = [await sut.acquire('prefetch'), await sut.acquire('prefetch')];
    const third = sut.acquire('prefetch');

    expect(prefetches).not.toContain(null);
    expect(await settled(third)).toBe('pending');
    expect(await settled(sut.acquire('client'))).not.toBe('pending');
    expect(sut.stats).toEqual({ running: 3, runningPrefetches: 2, waitingClients: 0, waitingPrefetches: 1 });
  });

  it('drops the oldest waiting prefetch when the prefetch queue is full (4 per slot)', async () => {
    const sut = slotsFor(1);
    const held = await sut.acquire('client');
    const queued = Array.from({ length: 4 }, () => sut.acquire('prefetch'));
    const newest = sut.acquire('prefetch');

    expect(await settled(queued[0])).toBeNull();
    expect(await Promise.all(queued.slice(1).map(settled))).toEqual(['pending', 'pending', 'pending']);
    expect(sut.stats.waitingPrefetches).toBe(4);
    held.release();
    const next = await settled(queued[1]);
    expect(next).not.toBe('pending');
    expect(next).not.toBeNull();
    expect(await settled(newest)).toBe('pending');
  });

  it('gets a slot back when its holder fails (release in finally), and a double release counts once', async () => {
    const sut = slotsFor(1);
    const failing = async () => {
      const slot = await sut.acquire('client');
      try {
        throw new Error('upstream refused');
      } finally {
        slot.release();
        slot.release();
      }
    };
    await expect(failing()).rejects.toThrow('upstream refused');

    const slot: DownloadSlot = await sut.acquire('client');
    const waiting = sut.acquire('client');
    expect(await settled(waiting)).toBe('pending');
    expect(sut.stats.running).toBe(1);
    slot.release();
    expect(await settled(waiting)).not.toBe('pending');
  });
});
