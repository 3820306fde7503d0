import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { OPTIONS } from 'src/config/options';

/**
 * The Docker files held to the option table: every flag and environment variable they give ncps must
 * be one ncps knows, and the pieces of the HA setup must point at each other. The image itself is
 * built and run by scripts/docker-test.sh (npm run test:docker), which needs a Docker engine.
 */
const root = join(__dirname, '../../..');
const read = (path: string) => readFileSync(join(root, path), 'utf8');

const FLAGS = new Set(OPTIONS.map((o) => o.flag));
const ENVS = new Set(OPTIONS.map((o) => o.env));

interface ComposeService {
  image?: string;
  build?: unknown;
  command?: string | string[];
  environment?: Record<string, string | number | boolean | null> | string[];
  [key: string]: unknown;
}
interface ComposeFile {
  services: Record<string, ComposeService>;
}

const compose = (path: string): ComposeFile => parseYaml(read(path), { merge: true }) as ComposeFile;

/** Services that run ncps: built from docker/Dockerfile, or from its image. */
const ncpsServices = (file: ComposeFile): Array<[string, ComposeService]> =>
  Object.entries(file.services).filter(([, s]) => s.build !== undefined || s.image?.startsWith('ncps:'));

const environmentOf = (service: ComposeService): Record<string, string> =>
  Array.isArray(service.environment)
    ? Object.fromEntries(service.environment.map((e) => [e.split('=')[0], e.slice(e.indexOf('=') + 1)]))
    : Object.fromEntries(Object.entries(service.environment ?? {}).map(([k, v]) => [k, String(v)]));

/** `--flag` and `--flag=value` words of a command line or argument list, without the dashes. */
const flagsIn = (words: string[]): string[] => words.filter((w) => w.startsWith('--')).map((w) => w.slice(2).split('=')[0]);

describe('docker/Dockerfile', () => {
  const dockerfile = read('docker/Dockerfile');
  const instructions = dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .filter((l) => /^[A-Z]+\s/.test(l))
    .map((l) => ({ op: l.split(/\s/)[0], args: l.slice(l.indexOf(' ') + 1).trim() }));
  const all = (op: string) => instructions.filter((i) => i.op === op).map((i) => i.args);

  it('gives ncps only flags and environment variables of the option table', () => {
    const argv = [...all('ENTRYPOINT'), ...all('CMD')].flatMap((args) => JSON.parse(args) as string[]);
    expect(argv).toEqual(['node', '/opt/ncps/dist/src/main.js', 'serve']);
    expect(flagsIn(argv).filter((f) => !FLAGS.has(f))).toEqual([]);
    const envs = all('ENV').flatMap((args) => args.split(/\s+/).map((pair) => pair.split('=')[0]));
    expect(envs).toEqual(['CACHE_DATA_DIR', 'CACHE_TEMP_PATH']);
    expect(envs.filter((e) => !ENVS.has(e))).toEqual([]);
  });

  it('builds in one stage and runs as a non-root user in a slim one, data in a volume, health-checked', () => {
    // Bases are build arguments (scripts/docker-test.sh passes locally made ones); the defaults are Node's images.
    expect(all('FROM')).toEqual(['${BUILD_BASE} AS build', '${BASE}']);
    expect(all('ARG')).toEqual(['NODE_VERSION=20', 'BUILD_BASE=node:${NODE_VERSION}-bookworm', 'BASE=node:${NODE_VERSION}-bookworm-slim']);
    expect(all('USER')).toEqual(['node']);
    expect(all('VOLUME')).toEqual(['/var/lib/ncps']);
    expect(all('ENV')).toEqual(['CACHE_DATA_DIR=/var/lib/ncps CACHE_TEMP_PATH=/var/lib/ncps/tmp']);
    expect(all('HEALTHCHECK')).toEqual([expect.stringContaining('CMD ["node", "/opt/ncps/healthcheck.js"]')]);
    expect(all('EXPOSE')).toEqual([OPTIONS.find((o) => o.flag === 'server-addr')!.default!.replace(':', '')]);
  });

  it('is built by scripts/docker-test.sh from a context holding everything it copies', () => {
    const script = read('scripts/docker-test.sh');
    const context = /tar -c --exclude='\*\.spec\.ts' ([^)]+)\)/.exec(script)![1].split(/\s+/);
    const copied = all('COPY')
      .filter((args) => !args.startsWith('--from'))
      .flatMap((args) => args.split(/\s+/).slice(0, -1));
    expect(copied.length).toBeGreaterThan(0);
    expect(copied.filter((path) => !context.some((c) => path === c || path.startsWith(`${c}/`)))).toEqual([]);
    expect(script).toContain('--build-arg BUILD_BASE=ncps-build-base:local');
    expect(script).toContain('--build-arg BASE=ncps-base:local');
  });

  it('has a health check that probes /health on the port of SERVER_ADDR', () => {
    const script = read('docker/healthcheck.js');
    expect(script).toContain('/health`');
    const envs = [...script.matchAll(/process\.env\.([A-Z_]+)/g)].map((m) => m[1]);
    expect(envs).toEqual(['SERVER_ADDR']);
    expect(envs.every((e) => ENVS.has(e))).toBe(true);
  });
});

describe.each(['docker/compose.yaml', 'docker/compose.ha.yaml'])('%s', (path) => {
  const file = compose(path);
  const services = ncpsServices(file);

  it('gives ncps only environment variables and flags of the option table', () => {
    expect(services.length).toBeGreaterThan(0);
    for (const [name, service] of services) {
      const unknownEnvs = Object.keys(environmentOf(service)).filter((e) => !ENVS.has(e));
      const command = typeof service.command === 'string' ? service.command.split(/\s+/) : (service.command ?? []);
      const unknownFlags = flagsIn(command).filter((f) => !FLAGS.has(f));
      expect({ name, unknownEnvs, unknownFlags }).toEqual({ name, unknownEnvs: [], unknownFlags: [] });
    }
  });

  it('builds ncps from docker/Dockerfile with the repository as context', () => {
    for (const [, service] of services) {
      expect(service).toMatchObject({ image: 'ncps:local', build: { context: '..', dockerfile: 'docker/Dockerfile' } });
    }
  });
});

describe('docker/compose.ha.yaml', () => {
  const file = compose('docker/compose.ha.yaml');
  const instances = ncpsServices(file);

  it('runs three instances sharing one database, bucket and lock backend, each advertising itself', () => {
    expect(instances.map(([name]) => name)).toEqual(['ncps-1', 'ncps-2', 'ncps-3']);
    const environments = instances.map(([, s]) => environmentOf(s));
    for (const [i, [name]] of instances.entries()) expect(environments[i].SERVER_ADVERTISE_URL).toBe(`http://${name}:8501`);
    const shared = environments.map(({ SERVER_ADVERTISE_URL: _own, ...rest }) => rest);
    expect(new Set(shared.map((e) => JSON.stringify(e))).size).toBe(1);
    expect(shared[0]).toMatchObject({
      CACHE_LOCK_BACKEND: 'redis',
      CACHE_REDIS_ADDRS: 'redis:6379',
      CACHE_STORAGE_S3_ENDPOINT: 'http://minio:9000',
    });
    expect(shared[0].CACHE_DATABASE_URL).toMatch(/^postgresql:\/\/[^@]+@postgres:5432\//);
  });

  it('has PostgreSQL, Redis, an S3-compatible store with its bucket, and a load balancer', () => {
    expect(Object.keys(file.services)).toEqual(expect.arrayContaining(['postgres', 'redis', 'minio', 'minio-bucket', 'load-balancer']));
    const env = environmentOf(instances[0][1]);
    const minio = environmentOf(file.services.minio);
    expect([env.CACHE_STORAGE_S3_ACCESS_KEY_ID, env.CACHE_STORAGE_S3_SECRET_ACCESS_KEY]).toEqual([
      minio.MINIO_ROOT_USER,
      minio.MINIO_ROOT_PASSWORD,
    ]);
    const bucketCommand = (file.services['minio-bucket'].entrypoint as string[]).join(' ');
    expect(bucketCommand).toContain(`local/${env.CACHE_STORAGE_S3_BUCKET}`);
    const postgres = environmentOf(file.services.postgres);
    expect(env.CACHE_DATABASE_URL).toBe(
      `postgresql://${postgres.POSTGRES_USER}:${postgres.POSTGRES_PASSWORD}@postgres:5432/${postgres.POSTGRES_DB}`,
    );
  });

  it('balances over exactly the three instances, checking /health', () => {
    const haproxy = read('docker/haproxy.cfg');
    const servers = [...haproxy.matchAll(/^\s*server\s+(\S+)\s+(\S+):(\d+)\s+check/gm)].map((m) => [m[2], m[3]]);
    expect(servers).toEqual(instances.map(([name]) => [name, '8501']));
    expect(haproxy).toMatch(/^\s*option httpchk GET \/health$/m);
    expect(file.services['load-balancer'].volumes).toContain('./haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro');
  });
});
