import { hostname as osHostname, homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseCidr } from 'src/common/cidr';
import { parsePublicKey } from 'src/nix';
import { upstreamTrust } from 'src/upstream/upstream.keys';
import { parseAllowedOrigin } from 'src/upstream/upstream.origins';
import { NoProxy, parseProxyUrl } from 'src/upstream/upstream.proxy';
import { parseUpstreamUrl } from 'src/upstream/upstream.url';
import { ConfigError, OptionValue } from './option';
import { DatabaseDialect, LockBackend, NcpsConfig, StorageConfig } from './config';
import { splitHostPort } from 'src/common/host-port';

/** Resolved option values, keyed by flag name (see options.ts). */
export type OptionValues = Readonly<Record<string, OptionValue | undefined>>;

export interface BuildContext {
  hostname?: string;
  tempDir?: string;
  homeDir?: string;
}

/** Turns resolved option values into a validated NcpsConfig, applying the cross-field rules. */
export function buildConfig(values: OptionValues, ctx: BuildContext = {}): NcpsConfig {
  const str = (flag: string) => values[flag] as string | undefined;
  const bool = (flag: string) => values[flag] as boolean;
  const num = (flag: string) => values[flag] as number;
  const list = (flag: string) => (values[flag] as string[] | undefined) ?? [];
  const warnings: string[] = [];

  const hostname = str('cache-hostname') || ctx.hostname || osHostname();
  const dataDir = resolve(str('cache-data-dir') ?? './var/ncps');
  const { host, port } = parseListenAddress(str('server-addr') ?? ':8501');

  const storage = buildStorage(values, dataDir);
  const database = buildDatabase(values, dataDir);

  let backend = (str('cache-lock-backend') ?? 'local') as LockBackend;
  const redisAddrs = list('cache-redis-addrs');
  if (backend === 'local' && redisAddrs.length > 0) {
    backend = 'redis';
    warnings.push('--cache-redis-addrs is set while --cache-lock-backend is local: using the redis lock backend');
  }
  if (backend === 'redis' && redisAddrs.length === 0) {
    throw new ConfigError('--cache-lock-backend=redis needs --cache-redis-addrs');
  }
  if (backend === 'redis' && redisAddrs.length > 1 && !bool('cache-redis-redlock-quorum') && num('cache-redis-db') !== 0) {
    throw new ConfigError(
      '--cache-redis-db must be 0 with a Redis Cluster (several --cache-redis-addrs); set --cache-redis-redlock-quorum if they are independent servers',
    );
  }
  if (backend === 'postgres' && database.dialect !== 'postgres') {
    throw new ConfigError(`--cache-lock-backend=postgres needs a PostgreSQL database; --cache-database-url is ${database.dialect}`);
  }
  if (backend !== 'local' && database.dialect === 'sqlite') {
    throw new ConfigError(
      `--cache-lock-backend=${backend} coordinates several instances, and they cannot share SQLite. ` +
        'High availability needs a shared PostgreSQL or MySQL database (--cache-database-url), ' +
        'shared S3 storage (--cache-storage-s3-bucket) and the same lock backend on every instance.',
    );
  }
  if (backend !== 'local' && storage.kind === 'local') {
    warnings.push(
      'distributed locks with local storage: every instance must see the same directory on one host; ' +
        'S3 (--cache-storage-s3-bucket) is the supported shared store',
    );
  }

  const maxSize = values['cache-max-size'] as number | undefined;
  const schedule = str('cache-lru-schedule');
  if (schedule && maxSize === undefined) {
    throw new ConfigError('--cache-lru-schedule needs --cache-max-size');
  }
  if (maxSize !== undefined && maxSize <= 0) throw new ConfigError('--cache-max-size must be greater than 0');

  const upstreamUrls = list('cache-upstream-url');
  for (const url of upstreamUrls) {
    if (!/^https?:\/\/[^/]+/.test(url)) {
      throw new ConfigError(`--cache-upstream-url: "${url}" is not an http(s) URL`);
    }
  }
  checkUpstreamTrust(upstreamUrls, list('cache-upstream-public-key'), list('cache-upstream-allow-unsigned'));
  const allowedOrigins = list('cache-upstream-allowed-origin').map((origin) => {
    try {
      return parseAllowedOrigin(origin);
    } catch (e) {
      throw new ConfigError(`--cache-upstream-allowed-origin: ${(e as Error).message}`);
    }
  });
  for (const [flag, min] of [
    ['cache-database-pool-max-open-conns', 1],
    ['cache-database-pool-max-idle-conns', 0],
    ['cache-redis-pool-size', 1],
    ['cache-lock-retry-max-attempts', 0],
    ['cache-redis-db', 0],
    ['cache-max-nar-size', 1],
    ['cache-priority', 0],
    ['cache-upstream-max-concurrent-downloads', 1],
    ['server-request-idle-timeout', 1],
  ] as const) {
    if (num(flag) < min) throw new ConfigError(`--${flag} must be at least ${min}`);
  }

  const getToken = str('cache-get-token') || undefined;
  // Falls back to the get token, so a deployment that protected reads does not open writes by upgrading.
  const putToken = str('cache-put-token') || getToken;
  const writable = bool('cache-allow-put-verb') || bool('cache-allow-delete-verb');
  if (writable && !putToken) {
    warnings.push(
      'PUT/DELETE are enabled without --cache-put-token (or --cache-get-token): anyone who can reach this cache ' +
        'can delete from it and publish store paths signed with its key',
    );
  }
  const requireTrustedSignature = bool('cache-require-trusted-signature');
  const uploadTrustedKeys = list('cache-upload-trusted-key');
  for (const key of uploadTrustedKeys) {
    try {
      parsePublicKey(key);
    } catch (e) {
      throw new ConfigError(`--cache-upload-trusted-key: ${(e as Error).message}`);
    }
  }
  if (requireTrustedSignature && uploadTrustedKeys.length === 0) {
    throw new ConfigError('--cache-require-trusted-signature needs at least one --cache-upload-trusted-key');
  }
  if (!requireTrustedSignature && uploadTrustedKeys.length > 0) {
    warnings.push('--cache-upload-trusted-key has no effect without --cache-require-trusted-signature');
  }

  const healthDetailsFrom = list('health-details-from');
  for (const range of healthDetailsFrom) {
    try {
      parseCidr(range);
    } catch (e) {
      throw new ConfigError(`--health-details-from: ${(e as Error).message}`);
    }
  }

  const home = ctx.homeDir ?? homedir();
  const netrc = str('netrc-file') ?? '~/.netrc';
  const advertiseUrl = parseAdvertiseUrl(str('server-advertise-url'));

  return {
    logLevel: str('log-level') ?? 'info',
    prometheusEnabled: bool('prometheus-enabled'),
    otel: { enabled: bool('otel-enabled'), endpoint: parseOtelEndpoint(str('otel-endpoint')) },
    server: {
      host,
      port,
      advertiseUrl,
      shutdownTimeoutMs: num('server-shutdown-timeout'),
      requestIdleTimeoutMs: num('server-request-idle-timeout'),
    },
    cache: {
      hostname,
      dataDir,
      tempPath: resolve(str('cache-temp-path') || ctx.tempDir || tmpdir()),
      secretKeyPath: str('cache-secret-key-path') || undefined,
      signNarinfo: bool('cache-sign-narinfo'),
      priority: num('cache-priority'),
      allowPut: bool('cache-allow-put-verb'),
      allowDelete: bool('cache-allow-delete-verb'),
      getToken,
      putToken,
      requireTrustedSignature,
      uploadTrustedKeys,
      maxSizeBytes: maxSize,
      maxNarSizeBytes: num('cache-max-nar-size'),
      lru: schedule ? { schedule, timezone: str('cache-lru-schedule-timezone') ?? 'Local' } : undefined,
      negativeTtlMs: num('cache-negative-ttl'),
    },
    storage,
    database,
    upstream: {
      urls: upstreamUrls,
      publicKeys: list('cache-upstream-public-key'),
      allowUnsigned: list('cache-upstream-allow-unsigned'),
      allowedOrigins,
      dialerTimeoutMs: num('cache-upstream-dialer-timeout'),
      responseHeaderTimeoutMs: num('cache-upstream-response-header-timeout'),
      maxConcurrentDownloads: num('cache-upstream-max-concurrent-downloads'),
      netrcFile: netrc.startsWith('~/') ? join(home, netrc.slice(2)) : netrc,
      ...upstreamProxies(values),
      caFile: str('cache-upstream-ca-file') || undefined,
    },
    lock: {
      backend,
      allowDegradedMode: bool('cache-lock-allow-degraded-mode'),
      downloadTtlMs: num('cache-lock-download-ttl'),
      lruTtlMs: num('cache-lock-lru-ttl'),
      retry: {
        maxAttempts: num('cache-lock-retry-max-attempts'),
        initialDelayMs: num('cache-lock-retry-initial-delay'),
        maxDelayMs: num('cache-lock-retry-max-delay'),
        jitter: bool('cache-lock-retry-jitter'),
      },
      keyPrefix: str('cache-lock-redis-key-prefix') ?? 'ncps:lock:',
      redis: {
        addrs: redisAddrs,
        username: str('cache-redis-username') || undefined,
        password: str('cache-redis-password') || undefined,
        db: num('cache-redis-db'),
        useTls: bool('cache-redis-use-tls') || Boolean(str('cache-redis-ca-file')),
        caFile: str('cache-redis-ca-file') || undefined,
        redlockQuorum: bool('cache-redis-redlock-quorum'),
        poolSize: num('cache-redis-pool-size'),
      },
    },
    health: { detailsFrom: healthDetailsFrom },
    warnings,
  };
}

/** The forward proxy options, checked (errors name the option, never a proxy URL: it may carry credentials). */
function upstreamProxies(values: OptionValues): { httpProxy?: string; httpsProxy?: string; noProxy: string[] } {
  const proxies: { httpProxy?: string; httpsProxy?: string; noProxy: string[] } = {
    noProxy: (values['cache-upstream-no-proxy'] as string[] | undefined) ?? [],
  };
  for (const [flag, field] of [
    ['cache-upstream-http-proxy', 'httpProxy'],
    ['cache-upstream-https-proxy', 'httpsProxy'],
  ] as const) {
    const url = (values[flag] as string | undefined)?.trim();
    if (!url) continue;
    try {
      parseProxyUrl(url);
    } catch (e) {
      throw new ConfigError(`--${flag}: ${(e as Error).message}`);
    }
    proxies[field] = url;
  }
  try {
    new NoProxy(proxies.noProxy);
  } catch (e) {
    throw new ConfigError(`--cache-upstream-no-proxy: ${(e as Error).message}`);
  }
  return proxies;
}

/** Refuses, before anything starts, an upstream that would be taken unverified without the operator saying so. */
function checkUpstreamTrust(urls: string[], publicKeys: string[], allowUnsigned: string[]): void {
  try {
    upstreamTrust(urls.map(parseUpstreamUrl), publicKeys.map(parsePublicKey), allowUnsigned);
  } catch (e) {
    throw new ConfigError((e as Error).message);
  }
}

/** --otel-endpoint, checked and without its trailing slash (the exporter appends /v1/traces). */
export function parseOtelEndpoint(value: string | undefined): string | undefined {
  if (!value) return undefined;
  const url = URL.canParse(value) ? new URL(value) : undefined;
  if (!url || !/^https?:$/.test(url.protocol) || url.search || url.hash) {
    // Not echoed: a collector URL may carry credentials.
    throw new ConfigError('--otel-endpoint: not an http(s) URL without query or fragment (example: http://collector:4318)');
  }
  return value.replace(/\/+$/, '');
}

/**
 * An explicit --server-advertise-url, checked and without its trailing slash. Its default (this
 * instance's own address) is decided once the server listens: see src/cluster/advertise-url.ts.
 */
export function parseAdvertiseUrl(value: string | undefined): string | undefined {
  if (!value) return undefined;
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (url?.username || url?.password) {
    // Not echoed: it holds credentials. Peers are reached with the get token, never with URL credentials.
    throw new ConfigError('--server-advertise-url must not contain credentials');
  }
  // At most 200: the announcements store it followed by `/_ncps/instance/<id>` in 255 characters.
  if (!url || !/^https?:$/.test(url.protocol) || url.search || url.hash || value.length > 200) {
    throw new ConfigError(
      `--server-advertise-url: "${value}" is not an http(s) URL of at most 200 characters without query or fragment (example: http://ncps-1.internal:8501)`,
    );
  }
  return value.replace(/\/+$/, '');
}

export function parseListenAddress(addr: string): { host: string; port: number } {
  try {
    const { host, port } = splitHostPort(addr, { allowZero: true });
    if (port !== undefined) return { host, port };
  } catch {
    // described below
  }
  throw new ConfigError(`--server-addr: "${addr}" is not HOST:PORT (examples: :8501, 127.0.0.1:8501)`);
}

function buildStorage(values: OptionValues, dataDir: string): StorageConfig {
  const local = values['cache-storage-local'] as string | undefined;
  const bucket = values['cache-storage-s3-bucket'] as string | undefined;
  if (local && bucket) {
    throw new ConfigError('exactly one storage backend: give --cache-storage-local or --cache-storage-s3-bucket, not both');
  }
  const s3Only = ['endpoint', 'region', 'access-key-id', 'secret-access-key'].filter((k) => values[`cache-storage-s3-${k}`] !== undefined);
  if (!bucket && s3Only.length > 0) {
    throw new ConfigError(`--cache-storage-s3-${s3Only[0]} is set but --cache-storage-s3-bucket is not`);
  }
  if (bucket) {
    const accessKeyId = values['cache-storage-s3-access-key-id'] as string | undefined;
    const secretAccessKey = values['cache-storage-s3-secret-access-key'] as string | undefined;
    if (Boolean(accessKeyId) !== Boolean(secretAccessKey)) {
      throw new ConfigError('--cache-storage-s3-access-key-id and --cache-storage-s3-secret-access-key go together');
    }
    return {
      kind: 's3',
      s3: {
        bucket,
        endpoint: values['cache-storage-s3-endpoint'] as string | undefined,
        region: values['cache-storage-s3-region'] as string | undefined,
        accessKeyId,
        secretAccessKey,
        forcePathStyle: values['cache-storage-s3-force-path-style'] as boolean,
      },
    };
  }
  return { kind: 'local', path: resolve(local || join(dataDir, 'storage')) };
}

export function databaseDialect(url: string): DatabaseDialect {
  const scheme = /^([a-z0-9]+):/i.exec(url)?.[1]?.toLowerCase();
  switch (scheme) {
    case 'sqlite':
    case 'sqlite3':
      return 'sqlite';
    case 'postgres':
    case 'postgresql':
      return 'postgres';
    case 'mysql':
      return 'mysql';
    default:
      // Never echo the URL: it may carry a password.
      throw new ConfigError('--cache-database-url: scheme must be sqlite:, postgresql://, postgres:// or mysql://');
  }
}

function buildDatabase(values: OptionValues, dataDir: string) {
  const url = (values['cache-database-url'] as string | undefined) || `sqlite:${join(dataDir, 'db', 'ncps.sqlite')}`;
  return {
    url,
    dialect: databaseDialect(url),
    poolMaxOpen: values['cache-database-pool-max-open-conns'] as number,
    poolMaxIdle: values['cache-database-pool-max-idle-conns'] as number,
  };
}
