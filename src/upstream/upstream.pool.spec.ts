import { UpstreamUnavailableError } from './upstream.errors';
import { UpstreamPools } from './upstream.pool';
import { NoProxy } from 'src/net';

describe('UpstreamPools.acquire', () => {
  let sut: UpstreamPools;
  const url = new URL('http://cache.example/x.narinfo');

  beforeEach(() => {
    sut = new UpstreamPools({ proxies: { noProxy: new NoProxy([]) }, maxConnections: () => 2, dialTimeoutMs: 1000, tunnelTimeoutMs: 1000 });
  });

  afterEach(() => sut.destroy());

  it('grants up to max-connections per origin and kind, then queues in order', async () => {
    const first = await sut.acquire(url, 'stream', 'cache.example');
    await sut.acquire(url, 'stream', 'cache.example');
    // Another kind, and another origin, have their own slots.
    await expect(sut.acquire(url, 'document', 'cache.example')).resolves.toBeInstanceOf(Function);
    await expect(sut.acquire(new URL('http://other.example/'), 'stream', 'other.example')).resolves.toBeInstanceOf(Function);

    const order: string[] = [];
    const third = sut.acquire(url, 'stream', 'cache.example').then((release) => (order.push('third'), release));
    const fourth = sut.acquire(url, 'stream', 'cache.example').then((release) => (order.push('fourth'), release));
    await Promise.resolve();
    expect(order).toEqual([]);
    first();
    first(); // a second release of the same slot frees nothing more
    const releaseThird = await third;
    await new Promise(setImmediate);
    expect(order).toEqual(['third']);
    releaseThird();
    await fourth;
    expect(order).toEqual(['third', 'fourth']);
  });

  it('fails a request that waits longer than it may, and leaves the queue usable', async () => {
    await sut.acquire(url, 'document', 'cache.example');
    const release = await sut.acquire(url, 'document', 'cache.example');
    const late = sut.acquire(url, 'document', 'cache.example', 20);
    await expect(late).rejects.toBeInstanceOf(UpstreamUnavailableError);
    await expect(late).rejects.toMatchObject({ reason: 'timeout', message: 'upstream cache.example: all 2 connections busy for 20 ms' });
    const next = sut.acquire(url, 'document', 'cache.example');
    release();
    await expect(next).resolves.toBeInstanceOf(Function);
  });

  it('fails waiting requests on shutdown', async () => {
    await sut.acquire(url, 'stream', 'cache.example');
    await sut.acquire(url, 'stream', 'cache.example');
    const waiting = sut.acquire(url, 'stream', 'cache.example');
    sut.destroy();
    await expect(waiting).rejects.toBeInstanceOf(UpstreamUnavailableError);
    await expect(sut.acquire(url, 'stream', 'cache.example')).rejects.toBeInstanceOf(UpstreamUnavailableError);
  });
});
