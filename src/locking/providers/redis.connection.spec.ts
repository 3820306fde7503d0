import { parseRedisAddress, redisOptions } from './redis.connection';

describe('parseRedisAddress', () => {
  it('reads host:port, [v6]:port and a bare host', () => {
    expect(parseRedisAddress('redis:6380')).toEqual({ host: 'redis', port: 6380 });
    expect(parseRedisAddress('[::1]:6379')).toEqual({ host: '::1', port: 6379 });
    expect(parseRedisAddress('redis.example.com')).toEqual({ host: 'redis.example.com', port: 6379 });
  });

  it('refuses garbage', () => {
    expect(() => parseRedisAddress('a:b:c')).toThrow('invalid Redis address');
  });
});

describe('redisOptions', () => {
  const redis = { addrs: ['r:6379'], username: 'ncps', password: 'secret', db: 3, useTls: false, poolSize: 10 };

  it('wires username, password and db', () => {
    expect(redisOptions('r:6379', redis, 'commands', 2000)).toMatchObject({ host: 'r', port: 6379, username: 'ncps', password: 'secret', db: 3 });
  });

  it('turns TLS on when --cache-redis-use-tls is set, and only then', () => {
    expect(redisOptions('r:6380', { ...redis, useTls: true }, 'commands', 2000).tls).toEqual({});
    expect(redisOptions('r:6380', redis, 'commands', 2000).tls).toBeUndefined();
  });

  it('fails commands fast while disconnected, but queues the subscription', () => {
    expect(redisOptions('r', redis, 'commands', 2000)).toMatchObject({ enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 2000 });
    expect(redisOptions('r', redis, 'subscriber', 2000)).toMatchObject({ enableOfflineQueue: true, maxRetriesPerRequest: null });
  });
});
