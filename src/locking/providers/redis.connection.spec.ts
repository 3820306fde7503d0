import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clusterOptions, parseRedisAddress, redisOptions, redisTls } from './redis.connection';

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
  const redis = { addrs: ['r:6379'], username: 'ncps', password: 'secret', db: 3, useTls: false, redlockQuorum: false, poolSize: 10 };

  it('wires username, password and db', () => {
    expect(redisOptions('r:6379', redis, 'commands', 2000)).toMatchObject({
      host: 'r',
      port: 6379,
      username: 'ncps',
      password: 'secret',
      db: 3,
    });
  });

  it('turns TLS on when --cache-redis-use-tls is set, and only then', () => {
    expect(redisOptions('r:6380', { ...redis, useTls: true }, 'commands', 2000).tls).toEqual({});
    expect(redisOptions('r:6380', redis, 'commands', 2000).tls).toBeUndefined();
  });

  it('fails commands fast while disconnected, but queues the subscription', () => {
    expect(redisOptions('r', redis, 'commands', 2000)).toMatchObject({
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: 2000,
    });
    expect(redisOptions('r', redis, 'subscriber', 2000)).toMatchObject({ enableOfflineQueue: true, maxRetriesPerRequest: null });
  });
});

describe('redisTls', () => {
  let dir: string;
  beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'ncps-ca-'))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('trusts only the CA file when one is given (and TLS follows from it)', () => {
    const file = join(dir, 'ca.pem');
    writeFileSync(file, 'PEM');
    expect(redisTls({ useTls: false, caFile: file })).toEqual({ ca: Buffer.from('PEM') });
  });

  it('names the CA file it cannot read', () => {
    expect(() => redisTls({ useTls: true, caFile: join(dir, 'missing.pem') })).toThrow(/--cache-redis-ca-file .*missing\.pem: ENOENT/);
  });
});

describe('clusterOptions', () => {
  const redis = { addrs: ['a:1', 'b:2'], username: 'ncps', password: 'secret', db: 0, useTls: true, poolSize: 10 };

  it('passes credentials and TLS to every node, never a database number', () => {
    const options = clusterOptions(redis, 'commands', 1500);
    expect(options.redisOptions).toMatchObject({ username: 'ncps', password: 'secret', tls: {}, commandTimeout: 1500 });
    expect(options.redisOptions).not.toHaveProperty('db');
  });

  it('fails commands fast while the cluster is not ready, but queues the subscription', () => {
    expect(clusterOptions(redis, 'commands', 1500).enableOfflineQueue).toBe(false);
    expect(clusterOptions(redis, 'subscriber', 1500).enableOfflineQueue).toBe(true);
  });
});
