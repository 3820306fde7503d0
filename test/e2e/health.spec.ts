import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RunningApp, startApp } from 'test/support/app';
import { TestDatabase, createTestDatabase } from 'test/support/databases';
import { FakeUpstream } from 'test/support/fake-upstream';
import { PrivateRedis } from 'test/support/lock-redis-server';
import { uniqueBucketName } from 'test/support/s3rver';
import { TcpProxy } from 'test/support/tcp-proxy';

/** s3rver 3 ships no type declarations: the part used here. */
type S3rverConstructor = new (options: {
  address: string;
  port: number;
  directory: string;
  silent: boolean;
  configureBuckets: { name: string }[];
}) => { run(): Promise<{ port: number }>; close(): Promise<void> };
const S3rver = require('s3rver') as S3rverConstructor;

/** An s3rver that can be stopped and started again on the same port, keeping its bucket. */
class RestartableS3 {
  private server?: InstanceType<S3rverConstructor>;
  port = 0;

  constructor(
    readonly directory: string,
    readonly bucket: string,
  ) {}

  async start(): Promise<void> {
    const server = new S3rver({
      address: '127.0.0.1',
      port: this.port,
      directory: this.directory,
      silent: true,
      configureBuckets: [{ name: this.bucket }],
    });
    this.port = (await server.run()).port;
    this.server = server;
  }

  async stop(): Promise<void> {
    await this.server?.close();
    this.server = undefined;
  }
}

interface HealthEntry {
  status: 'up' | 'down';
  [detail: string]: unknown;
}
interface HealthBody {
  status: 'ok' | 'error';
  reason?: string;
  error: Record<string, HealthEntry>;
  details: Record<string, HealthEntry>;
}

/**
 * /health reports each required dependency — database, storage, lock backend — and turns 503 naming
 * the one that is down, then 200 again once it is back; the load balancer probes stay 200 throughout.
 * Each dependency is the real thing made unreachable: PostgreSQL behind a proxy that is cut, a private
 * redis-server killed, s3rver stopped.
 */
describe('/health with PostgreSQL, S3 and Redis locks', () => {
  let database: TestDatabase;
  let postgres: TcpProxy;
  let redis: PrivateRedis;
  let s3: RestartableS3;
  let s3Dir: string;
  let upstream: FakeUpstream;
  let server: RunningApp;

  beforeAll(async () => {
    database = await createTestDatabase('postgres');
    postgres = await TcpProxy.start('127.0.0.1', 5432);
    redis = await PrivateRedis.start();
    s3Dir = await mkdtemp(join(tmpdir(), 'ncps-health-s3-'));
    s3 = new RestartableS3(s3Dir, uniqueBucketName('ncps-health'));
    await s3.start();
    upstream = await FakeUpstream.start();
    server = await startApp({
      'cache-database-url': database.url.replace('127.0.0.1:5432', postgres.address),
      'cache-storage-s3-bucket': s3.bucket,
      'cache-storage-s3-endpoint': `http://127.0.0.1:${s3.port}`,
      'cache-storage-s3-region': 'us-east-1',
      'cache-storage-s3-access-key-id': 'S3RVER',
      'cache-storage-s3-secret-access-key': 'S3RVER',
      'cache-storage-s3-force-path-style': true,
      'cache-lock-backend': 'redis',
      'cache-redis-addrs': [redis.address],
      'cache-upstream-url': [upstream.url],
      'cache-upstream-allow-unsigned': [upstream.url],
    });
  }, 60_000);

  afterAll(async () => {
    await server?.close();
    await upstream?.stop();
    await s3?.stop();
    await rm(s3Dir, { recursive: true, force: true });
    await redis?.destroy();
    await postgres?.cut();
    await database?.drop();
  });

  async function health(): Promise<{ status: number; body: HealthBody }> {
    const res = await fetch(`${server.url}/health`);
    return { status: res.status, body: (await res.json()) as HealthBody };
  }

  /** Polls /health until it answers `status` (recovery waits for reconnects); returns that answer. */
  async function healthBecomes(status: number, withinMs = 20_000): Promise<{ status: number; body: HealthBody }> {
    const deadline = Date.now() + withinMs;
    let last = await health();
    while (last.status !== status && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      last = await health();
    }
    return last;
  }

  async function expectProbesStayUp(): Promise<void> {
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${server.url}/pubkey`)).status).toBe(200);
  }

  it('is 200 with every dependency described when all are up', async () => {
    const { status, body } = await health();
    expect(status).toBe(200);
    expect(body.status).toBe('ok');
    expect(body.details).toMatchObject({
      database: { status: 'up', dialect: 'postgres' },
      storage: { status: 'up', kind: 's3' },
      locks: { status: 'up', backend: 'redis', mode: 'distributed', reachable: true },
      upstreams: { status: 'up', healthy: 1, total: 1 },
    });
  });

  it('is 503 naming the database while PostgreSQL is unreachable, and recovers', async () => {
    await postgres.cut();
    try {
      const down = await healthBecomes(503);
      expect(down.status).toBe(503);
      expect(Object.keys(down.body.error)).toEqual(['database']);
      expect(down.body.reason).toBe('down: database');
      expect(down.body.error.database).toMatchObject({ status: 'down', message: expect.stringMatching(/^database unreachable: /) });
      await expectProbesStayUp();
    } finally {
      await postgres.restore();
    }
    expect((await healthBecomes(200)).status).toBe(200);
  }, 30_000);

  it('is 503 naming the lock backend while Redis is down (no degraded mode), and recovers', async () => {
    await redis.stop();
    try {
      const down = await healthBecomes(503);
      expect(down.status).toBe(503);
      expect(Object.keys(down.body.error)).toEqual(['locks']);
      expect(down.body.reason).toBe('down: locks');
      expect(down.body.error.locks).toMatchObject({
        status: 'down',
        backend: 'redis',
        reachable: false,
        detail: expect.stringContaining('Redis unreachable'),
      });
      await expectProbesStayUp();
    } finally {
      await redis.start();
    }
    const up = await healthBecomes(200);
    expect(up.status).toBe(200);
    expect(up.body.details.locks).toMatchObject({ status: 'up', mode: 'distributed' });
  }, 30_000);

  it('is 503 naming the storage while the bucket is unreachable, and recovers', async () => {
    await s3.stop();
    try {
      const down = await healthBecomes(503);
      expect(down.status).toBe(503);
      expect(Object.keys(down.body.error)).toEqual(['storage']);
      expect(down.body.reason).toBe('down: storage');
      expect(down.body.error.storage).toMatchObject({ status: 'down', kind: 's3', message: expect.any(String) });
      await expectProbesStayUp();
    } finally {
      await s3.start();
    }
    expect((await healthBecomes(200)).status).toBe(200);
  }, 30_000);
});
