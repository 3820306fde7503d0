import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { readNixFixture } from 'test/fixtures/nix/fixtures';
import { createTestDatabase, TestDatabase } from 'test/support/databases';
import { FakeUpstream } from 'test/support/fake-upstream';
import { PrivateRedis } from 'test/support/lock-redis-server';
import { NcpsProcess, freePort } from 'test/support/ncps-process';
import { S3rverHandle, startS3rver } from 'test/support/s3rver';
import { TcpProxy } from 'test/support/tcp-proxy';
import { until } from 'test/support/wait';

/** s3rver's account registry (module-wide): registers the test's own S3 keys so they are accepted. */
const s3rverAccounts = require('s3rver/lib/models/account') as {
  DUMMY_ACCOUNT: { createKeyPair(id: string, secret: string): void; revokeAccessKey(id: string): void };
};

const MAIN = join(__dirname, '../../../dist/src/main.js');
const HASH = 'i9pmrzmpshapij2kin22pff6fc2adavx';
const NAR_PATH = '/nar/04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw.nar';

interface LogLine {
  level: string;
  msg: string;
  reqId?: string;
  [field: string]: unknown;
}

/** GETs `url` and hangs up as soon as the response starts, as a cancelled Nix substitution does. */
function getAndHangUp(url: string, headers: Record<string, string>): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, headers }, (res) => {
      req.destroy();
      resolve(res.statusCode);
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * The built CLI (`npm run build`) with every kind of secret configured — a PostgreSQL URL with a
 * password, S3 keys, a Redis password, a get-token, credentials in an upstream URL — given through
 * the environment, a flag and the config file, then driven through successes and failures of each
 * backend. Not one captured line (stdout and stderr) may contain a secret.
 */
describe('logs of ncps serve', () => {
  const suffix = randomBytes(6).toString('hex');
  const secrets = {
    // `/`, `@` and `:` must be percent-encoded in the URL: both forms are secrets.
    pgPassword: `pg/pw@${suffix}:x`,
    redisPassword: `redis-pw-${suffix}`,
    s3AccessKeyId: `AKIA${suffix.toUpperCase()}`,
    s3SecretAccessKey: `s3-secret-${suffix}`,
    getToken: `get-token-${suffix}`,
    upstreamPassword: `upstream-pw-${suffix}`,
  };
  const role = `ncps_obs_${suffix}`;
  let dir: string;
  let database: TestDatabase;
  let postgres: TcpProxy;
  let redis: PrivateRedis;
  let s3: S3rverHandle;
  let upstream: FakeUpstream;
  let ncps: NcpsProcess;
  const auth = { authorization: `Bearer ${secrets.getToken}` };

  const admin = async (sql: string): Promise<void> => {
    const client = new Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };

  const lines = (): LogLine[] => ncps.logs.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogLine);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ncps-logs-'));
    await admin(`CREATE ROLE ${role} LOGIN PASSWORD '${secrets.pgPassword}'`);
    database = await createTestDatabase('postgres', { owner: role });
    postgres = await TcpProxy.start('127.0.0.1', 5432);
    redis = await PrivateRedis.start({ config: [`requirepass ${secrets.redisPassword}`] });
    s3rverAccounts.DUMMY_ACCOUNT.createKeyPair(secrets.s3AccessKeyId, secrets.s3SecretAccessKey);
    s3 = await startS3rver();
    upstream = await FakeUpstream.start();
    upstream.serve(`/${HASH}.narinfo`, readNixFixture(`narinfo/none/${HASH}.narinfo`));
    // Slow (120 bytes over ~1.5 s), so that a client can hang up while it streams.
    upstream.route(NAR_PATH, { body: readNixFixture('hello.txt.nar'), throttle: { chunkSize: 8, intervalMs: 100 } });
    const configFile = join(dir, 'config.yaml');
    await writeFile(configFile, `cache:\n  get-token: ${secrets.getToken}\n`);
    const publicKey = (await readFile(join(__dirname, '../../fixtures/nix/keys/fixture-1.pk'), 'utf8')).trim();
    ncps = await NcpsProcess.start(
      [
        `--config=${configFile}`,
        '--log-level=debug',
        `--cache-data-dir=${join(dir, 'data')}`,
        `--cache-redis-password=${secrets.redisPassword}`,
        `--cache-upstream-url=http://mirror:${secrets.upstreamPassword}@127.0.0.1:${upstream.port}`,
        `--cache-upstream-public-key=${publicKey}`,
        '--cache-hostname=ncps-logs-test',
      ],
      {
        CACHE_DATABASE_URL: `postgresql://${role}:${encodeURIComponent(secrets.pgPassword)}@${postgres.address}/${database.name}`,
        CACHE_LOCK_BACKEND: 'redis',
        CACHE_REDIS_ADDRS: redis.address,
        CACHE_STORAGE_S3_BUCKET: s3.bucket,
        CACHE_STORAGE_S3_ENDPOINT: s3.endpoint,
        CACHE_STORAGE_S3_REGION: 'us-east-1',
        CACHE_STORAGE_S3_FORCE_PATH_STYLE: 'true',
        CACHE_STORAGE_S3_ACCESS_KEY_ID: secrets.s3AccessKeyId,
        CACHE_STORAGE_S3_SECRET_ACCESS_KEY: secrets.s3SecretAccessKey,
      },
    );
  }, 60_000);

  afterAll(async () => {
    await ncps?.stop();
    await upstream?.stop();
    await s3?.stop();
    s3rverAccounts.DUMMY_ACCOUNT.revokeAccessKey(secrets.s3AccessKeyId);
    await redis?.destroy();
    await postgres?.cut();
    await database?.drop();
    await admin(`DROP ROLE IF EXISTS ${role}`);
    await rm(dir, { recursive: true, force: true });
  });

  it('are JSON lines (stdout is not a terminal) carrying the request id on every line of a request', async () => {
    const res = await fetch(`${ncps.url}/${HASH}.narinfo`, { headers: { ...auth, 'x-request-id': `miss-${suffix}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toBe(`miss-${suffix}`);
    await until('the request is logged', () => lines().some((l) => l.reqId === `miss-${suffix}` && l.msg === 'request completed'));

    expect(ncps.logs.filter((l) => l.startsWith('{')).length).toBeGreaterThan(10);
    const ofRequest = lines().filter((l) => l.reqId === `miss-${suffix}`);
    // The service's own lines inside the request (lock, upstream fetch) carry its id, like the access line.
    expect(ofRequest.map((l) => l.msg)).toEqual(
      expect.arrayContaining(['acquired download lock', 'narinfo fetched from upstream', 'request completed']),
    );
    expect(ofRequest.find((l) => l.msg === 'acquired download lock')).toMatchObject({
      level: 'info',
      hash: HASH,
      lock_type: 'download:narinfo',
      duration_ms: expect.any(Number),
      retries: expect.any(Number),
    });
  });

  it('do not treat a client hanging up as an error', async () => {
    await until('the NAR is being downloaded', () => upstream.count(NAR_PATH) === 1);
    expect(await getAndHangUp(`${ncps.url}${NAR_PATH}`, { ...auth, 'x-request-id': `quit-${suffix}` })).toBe(200);
    await until('the hang-up is logged', () =>
      lines().some((l) => l.reqId === `quit-${suffix}` && l.msg === 'client closed the connection'),
    );
    const ofRequest = lines().filter((l) => l.reqId === `quit-${suffix}`);
    expect(ofRequest.find((l) => l.msg === 'client closed the connection')?.level).toBe('info');
    expect(ofRequest.filter((l) => l.level === 'error' || l.level === 'fatal')).toEqual([]);
  });

  it('never contain a secret, through successes and failures of every backend', async () => {
    /** /health (read from loopback, so with details) is 503 and names `dependency` among what is down. */
    const healthDown = async (dependency: string) => {
      const res = await fetch(`${ncps.url}/health`);
      const body = (await res.json()) as { error?: Record<string, unknown> };
      return res.status === 503 && body.error?.[dependency] !== undefined;
    };
    const basic = `Basic ${Buffer.from(`nix:${secrets.getToken}`).toString('base64')}`;
    expect((await fetch(`${ncps.url}/${HASH}.narinfo`)).status).toBe(401);
    expect((await fetch(`${ncps.url}/${HASH}.narinfo`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    // HEAD answers while the NAR is still downloading; the commit's log line says it went to storage.
    await until('the NAR is stored', () => lines().some((l) => l.msg === 'NAR committed to storage'));
    expect((await fetch(`${ncps.url}${NAR_PATH}`, { headers: { authorization: basic } })).status).toBe(200);
    expect((await fetch(`${ncps.url}/health`)).status).toBe(200);

    // S3 refuses our key: storage errors, a 503 /health.
    s3rverAccounts.DUMMY_ACCOUNT.revokeAccessKey(secrets.s3AccessKeyId);
    expect((await fetch(`${ncps.url}${NAR_PATH}`, { headers: auth })).status).toBeGreaterThanOrEqual(500);
    // /health shares one probe run a second: the answer turns once the last run is older than that.
    await until('/health reports the storage down', () => healthDown('storage'));
    s3rverAccounts.DUMMY_ACCOUNT.createKeyPair(secrets.s3AccessKeyId, secrets.s3SecretAccessKey);

    // PostgreSQL unreachable: failed queries.
    await postgres.cut();
    expect((await fetch(`${ncps.url}/${'1'.repeat(32)}.narinfo`, { headers: auth })).status).toBeGreaterThanOrEqual(500);
    await until('/health reports the database down', () => healthDown('database'));
    await postgres.restore();

    // Redis down, then back with another password: lock failures, the circuit breaker, refused AUTH.
    await redis.stop();
    // Each miss makes 1 + retry-max-attempts tries; the breaker opens after 5 consecutive failures.
    let misses = 0;
    await until('the circuit breaker opens', async () => {
      await fetch(`${ncps.url}/${String(misses++ % 10).repeat(32)}.narinfo`, { headers: auth });
      return lines().some((l) => l.msg === 'circuit breaker open: Redis is unavailable');
    });
    await until('/health reports the locks down', () => healthDown('locks'));
    await redis.start();
    await until('/health recovers', async () => (await fetch(`${ncps.url}/health`)).status === 200);

    const exit = await ncps.kill('SIGTERM');
    expect(exit.code).toBe(0);

    const output = ncps.logs.join('\n');
    const forbidden = Object.values(secrets).flatMap((s) => [s, encodeURIComponent(s)]);
    forbidden.push(basic.slice('Basic '.length), Buffer.from(`mirror:${secrets.upstreamPassword}`).toString('base64'));
    for (const secret of forbidden) expect([secret, output.includes(secret)]).toEqual([secret, false]);
    // The run did log what secrets hide in: the request headers (masked), the failures of each backend.
    expect(output).toContain('"authorization":"[redacted]"');
    expect(lines().some((l) => l.msg === 'failed to acquire lock')).toBe(true);
    expect(lines().some((l) => l.msg === 'circuit breaker open: Redis is unavailable')).toBe(true);
  }, 60_000);
});

describe('log format and level of ncps serve', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ncps-log-format-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('is pretty, coloured text on a terminal', async () => {
    const port = await freePort();
    const command = `${process.execPath} ${MAIN} serve --server-addr=127.0.0.1:${port} --cache-data-dir=${dir} --cache-upstream-url=`;
    // script(1) runs the command on a pseudo-terminal; its own process group, to stop both at once.
    const child = spawn('script', ['-qefc', command, '/dev/null'], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    try {
      await until('ncps serves', () => output.includes('ncps is serving'));
    } finally {
      const exited = once(child, 'exit');
      process.kill(-child.pid!, 'SIGTERM');
      await exited;
    }
    const line = output.split('\n').find((l) => l.includes('ncps is serving'))!;
    expect(line).toMatch(/^\[\d{4}-\d\d-\d\d [\d:.]+ [+-]\d{4}\] \u001b\[32mINFO\u001b\[39m: \u001b\[36mServer: ncps is serving/);
    expect(output).not.toContain('{"level"');
  });

  it('leaves out lines below --log-level', async () => {
    const quiet = await NcpsProcess.start([`--cache-data-dir=${dir}`, '--cache-upstream-url=', '--log-level=warn']);
    try {
      expect((await fetch(`${quiet.url}/${'0'.repeat(32)}.narinfo`)).status).toBe(404);
      expect(await quiet.kill('SIGTERM')).toEqual({ code: 0, signal: null });
    } finally {
      await quiet.stop();
    }
    const levels = new Set(quiet.logs.filter((l) => l.startsWith('{')).map((l) => (JSON.parse(l) as LogLine).level));
    expect(quiet.logs.some((l) => l.includes('ncps is serving'))).toBe(false);
    expect([...levels].filter((level) => !['warn', 'error', 'fatal'].includes(level))).toEqual([]);
  });
});
