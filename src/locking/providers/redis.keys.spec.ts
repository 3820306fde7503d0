import { hashSlot, redisKeyLayout } from './redis.keys';

describe('redisKeyLayout', () => {
  it('keeps the documented layout on plain servers', () => {
    const sut = redisKeyLayout('ncps:lock:', false);
    expect(sut.resources('download:nar:abc')).toEqual([
      'ncps:lock:download:nar:abc',
      'ncps:lock:download:nar:abc:readers',
      'ncps:lock:download:nar:abc:writer-waiting',
    ]);
    expect(sut.lockName('ncps:lock:download:nar:abc')).toBe('download:nar:abc');
    expect(sut.lockName('other:download:nar:abc')).toBeUndefined();
  });

  it('hash-tags the lock name on a cluster: the keys of one lock share a slot', () => {
    const sut = redisKeyLayout('ncps:lock:', true);
    const keys = sut.resources('download:nar:abc');
    expect(keys).toEqual([
      'ncps:lock:{download:nar:abc}',
      'ncps:lock:{download:nar:abc}:readers',
      'ncps:lock:{download:nar:abc}:writer-waiting',
    ]);
    expect(new Set(keys.map(hashSlot)).size).toBe(1);
    expect(sut.lockName('ncps:lock:{download:nar:abc}')).toBe('download:nar:abc');
    expect(sut.lockName('ncps:lock:download:nar:abc')).toBeUndefined();
  });

  it('spreads different locks over the slots', () => {
    const sut = redisKeyLayout('ncps:lock:', true);
    const slots = new Set(Array.from({ length: 50 }, (_, i) => hashSlot(sut.lockKey(`download:nar:h${i}`))));
    expect(slots.size).toBeGreaterThan(40);
  });
});

describe('hashSlot', () => {
  it('matches Redis Cluster (CLUSTER KEYSLOT)', () => {
    // Values from the Redis Cluster specification and `redis-cli CLUSTER KEYSLOT`.
    expect(hashSlot('123456789')).toBe(12739);
    expect(hashSlot('foo')).toBe(12182);
    expect(hashSlot('{user1000}.following')).toBe(hashSlot('user1000'));
    // An empty tag is no tag: the whole key is hashed.
    expect(hashSlot('foo{}{bar}')).not.toBe(hashSlot('bar'));
  });
});
