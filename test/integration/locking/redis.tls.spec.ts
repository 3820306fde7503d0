import { Logger } from '@nestjs/common';
import { Registry } from 'prom-client';
import { buildConfig } from 'src/config/build-config';
import { resolveOptions } from 'src/config/resolve';
import { LockPort } from 'src/locking';
import { createLockPort } from 'src/locking/lock.factory';
import { PrivateRedis } from 'test/support/lock-redis-server';
import { lockTestConfig, LockTestConfig, testKeyPrefix } from 'test/support/lock-services';
import { RedisCluster } from 'test/support/redis-cluster';
import { createTestPki, TestPki } from 'test/support/redis-tls';

const USER = { name: 'ncps', password: 'tls-acl-s3cret' };

/** The configuration ncps would build from its environment (the password never on a command line). */
function configFromEnvironment(addrs: string[], env: Record<string, string>): LockTestConfig {
  const config = buildConfig(
    resolveOptions({
      flags: {},
      env: {
        CACHE_LOCK_BACKEND: 'redis',
        CACHE_REDIS_ADDRS: addrs.join(','),
        CACHE_LOCK_REDIS_KEY_PREFIX: testKeyPrefix(),
        CACHE_DATABASE_URL: 'postgresql://postgres@127.0.0.1:5432/unused',
        CACHE_STORAGE_S3_BUCKET: 'unused',
        ...env,
      },
    }),
    { hostname: 'box', tempDir: '/tmp', homeDir: '/tmp' },
  );
  return { lock: config.lock, database: config.database };
}

/** Start-up fails: the error, and everything logged meanwhile. */
async function startFailure(config: LockTestConfig): Promise<{ error: Error; logged: string }> {
  const logged: unknown[] = [];
  const spy = jest.spyOn(Logger.prototype, 'error').mockImplementation((...args: unknown[]) => void logged.push(args));
  try {
    const error = await createLockPort(config, new Registry(), { readyTimeoutMs: 5000 }).then(
      async (port) => {
        await port.close();
        return new Error('started');
      },
      (e: unknown) => e as Error,
    );
    return { error, logged: JSON.stringify(logged) };
  } finally {
    spy.mockRestore();
  }
}

async function lockAcrossTwo(config: LockTestConfig): Promise<void> {
  const ports: LockPort[] = [];
  try {
    ports.push(await createLockPort(config, new Registry()), await createLockPort(config, new Registry()));
    let inside = 0;
    let most = 0;
    await Promise.all(
      ports.flatMap((port) =>
        [1, 2, 3].map(() =>
          port.withLock('download:nar:tls', 5000, async () => {
            most = Math.max(most, ++inside);
            await new Promise((resolve) => setTimeout(resolve, 5));
            inside -= 1;
          }),
        ),
      ),
    );
    expect(most).toBe(1);
    await expect(ports[0].check()).resolves.toBeUndefined();
    expect(ports[0].status()).toMatchObject({ backend: 'redis', mode: 'distributed', reachable: true });
  } finally {
    await Promise.all(ports.map((port) => port.close()));
  }
}

let pki: TestPki;
beforeAll(() => {
  Logger.overrideLogger(false);
  pki = createTestPki();
});
afterAll(() => pki?.destroy());

describe('redis over TLS with an ACL user: one server', () => {
  let server: PrivateRedis;

  beforeAll(async () => {
    server = await PrivateRedis.start({
      tls: { certFile: pki.certFile, keyFile: pki.keyFile },
      config: ['user default off', `user ${USER.name} on >${USER.password} ~* &* +@all`],
    });
  });
  afterAll(() => server?.destroy());

  const env = (extra: Record<string, string> = {}): Record<string, string> => ({
    CACHE_REDIS_USE_TLS: 'true',
    CACHE_REDIS_USERNAME: USER.name,
    CACHE_REDIS_PASSWORD: USER.password,
    CACHE_REDIS_CA_FILE: pki.caFile,
    ...extra,
  });

  it('locks through TLS, trusting the private CA of --cache-redis-ca-file, with the password from the environment', async () => {
    await lockAcrossTwo(configFromEnvironment([server.address], env()));
  });

  it('refuses to start with a CA that did not sign the certificate, and says what to do', async () => {
    const { error } = await startFailure(configFromEnvironment([server.address], env({ CACHE_REDIS_CA_FILE: pki.otherCaFile })));
    expect(error.message).toMatch(
      /^Redis at 127\.0\.0\.1:\d+: TLS certificate not trusted \(\w+: .+\): give its CA with --cache-redis-ca-file or NODE_EXTRA_CA_CERTS$/,
    );
  });

  it('refuses to start with the system CAs only (no CA file)', async () => {
    const config = configFromEnvironment([server.address], env({ CACHE_REDIS_CA_FILE: '' }));
    expect(config.lock.redis).toMatchObject({ useTls: true, caFile: undefined });
    const { error } = await startFailure(config);
    expect(error.message).toContain('TLS certificate not trusted');
  });

  it('refuses to start with a wrong password, naming the user but never the password', async () => {
    const { error, logged } = await startFailure(
      configFromEnvironment([server.address], env({ CACHE_REDIS_PASSWORD: 'not-the-right-s3cret' })),
    );
    expect(error.message).toMatch(/refused the credentials of user "ncps" \(WRONGPASS/);
    expect(logged).toContain('refused the credentials');
    expect(`${error.message}${logged}`).not.toContain('not-the-right-s3cret');
  });
});

describe('redis over TLS with an ACL user: a 3-master cluster', () => {
  let cluster: RedisCluster;

  beforeAll(async () => {
    cluster = await RedisCluster.start({
      masters: 3,
      tls: { certFile: pki.certFile, keyFile: pki.keyFile, caFile: pki.caFile },
      user: USER,
    });
  }, 60_000);
  afterAll(() => cluster?.destroy());

  const env = (extra: Record<string, string> = {}): Record<string, string> => ({
    CACHE_REDIS_USERNAME: USER.name,
    CACHE_REDIS_PASSWORD: USER.password,
    CACHE_REDIS_CA_FILE: pki.caFile,
    ...extra,
  });

  it('locks on the cluster through TLS (the CA file implies TLS)', async () => {
    const config = configFromEnvironment(cluster.addresses, env());
    expect(config.lock.redis).toMatchObject({ useTls: true, redlockQuorum: false });
    await lockAcrossTwo(config);
  });

  it('finds the cluster from one TLS address', async () => {
    await lockAcrossTwo(configFromEnvironment([cluster.addresses[1]], env()));
  });

  it('refuses to start with an untrusted certificate or a wrong password', async () => {
    const untrusted = await startFailure(configFromEnvironment(cluster.addresses, env({ CACHE_REDIS_CA_FILE: pki.otherCaFile })));
    expect(untrusted.error.message).toContain('TLS certificate not trusted');
    const wrong = await startFailure(configFromEnvironment(cluster.addresses, env({ CACHE_REDIS_PASSWORD: 'not-the-right-s3cret' })));
    expect(wrong.error.message).toMatch(/refused the credentials of user "ncps"/);
    expect(`${wrong.error.message}${wrong.logged}`).not.toContain('not-the-right-s3cret');
  });

  it('is plain lockTestConfig-compatible too (username/password/TLS passed directly)', async () => {
    const config = lockTestConfig('redis', {
      keyPrefix: testKeyPrefix(),
      redisAddrs: cluster.addresses,
      redis: { useTls: true, caFile: pki.caFile, username: USER.name, password: USER.password },
    });
    await lockAcrossTwo(config);
  });
});
