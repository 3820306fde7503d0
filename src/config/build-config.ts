import { hostname as osHostname, homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseCidr } from 'src/common/cidr';
import { parsePublicKey } from 'src/nix';
import { NoProxy, parseAllowedOrigin, parseProxyUrl, parseUpstreamUrl, splitHostPort } from 'src/net';
import { ConfigError } from './option';
import { DatabaseDialect, NcpsConfig, StorageConfig } from './config';
import { errorMessage } from 'src/common/error-fields';
import { OptionReader, OptionValues } from './option-reader';
import { upstreamTrust } from './upstream-trust';
import { NcpsOption, readOptions } from './options';

type Options = OptionReader<NcpsOption>;

export interface BuildContext {
  hostname?: string;
  tempDir?: string;
  homeDir?: string;
}

/** Turns resolved option values into a validated NcpsConfig, applying the cross-field rules. */
export function buildConfig(values: OptionValues, ctx: BuildContext = {}): NcpsConfig {
  const opts = readOptions(values);
  const warnings: string[] = [];

  const hostname = opts.string('cache-hostname') || ctx.hostname || osHostname();
  const dataDir = resolve(opts.string('cache-data-dir'));
  const { host, port } = parseListenAddress(opts.string('server-addr'));

  const storage = buildStorage(opts, dataDir);
  const database = buildDatabase(opts, dataDir);

  let backend = opts.choice('cache-lock-backend');
  const redisAddrs = opts.list('cache-redis-addrs') ?? [];
  if (backend === 'local' && redisAddrs.length > 0) {
    backend = 'redis';
    warnings.push('--cache-redis-addrs is set while --cache-lock-backend is local: using the redis lock backend');
  }
  if (backend === 'redis' && redisAddrs.length === 0) {
    throw new ConfigError('--cache-lock-backend=redis needs --cache-redis-addrs');
  }
  if (backend === 'redis' && redisAddrs.length > 1 && !opts.bool('cache-redis-redlock-quorum') && opts.number('cache-redis-db') !== 0) {
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

  const maxSize = opts.number('cache-max-size');
  const schedule = opts.string('cache-lru-schedule');
  if (schedule && maxSize === undefined) {
    throw new ConfigError('--cache-lru-schedule needs --cache-max-size');
  }
  if (maxSize !== undefined && maxSize <= 0) throw new ConfigError('--cache-max-size must be greater than 0');

  const upstreamUrls = opts.list('cache-upstream-url');
  for (const url of upstreamUrls) {
    if (!/^https?:\/\/[^/]+/.test(url)) {
      throw new ConfigError(`--cache-upstream-url: "${url}" is not an http(s) URL`);
    }
  }
  const upstreamPublicKeys = opts.list('cache-upstream-public-key');
  const allowUnsigned = opts.list('cache-upstream-allow-unsigned') ?? [];
  checkUpstreamTrust(upstreamUrls, upstreamPublicKeys, allowUnsigned);
  const allowedOrigins = (opts.list('cache-upstream-allowed-origin') ?? []).map((origin) => {
    try {
      return parseAllowedOrigin(origin);
    } catch (e) {
      throw new ConfigError(`--cache-upstream-allowed-origin: ${errorMessage(e)}`);
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
    if (opts.number(flag) < min) throw new ConfigError(`--${flag} must be at least ${min}`);
  }

  const getToken = opts.string('cache-get-token') || undefined;
  // Falls back to the get token, so a deployment that protected reads does not open writes by upgrading.
  const putToken = opts.string('cache-put-token') || getToken;
  const writable = opts.bool('cache-allow-put-verb') || opts.bool('cache-allow-delete-verb');
  if (writable && !putToken) {
    warnings.push(
      'PUT/DELETE are enabled without --cache-put-token (or --cache-get-token): anyone who can reach this cache ' +
        'can delete from it and publish store paths signed with its key',
    );
  }
  const requireTrustedSignature = opts.bool('cache-require-trusted-signature');
  const uploadTrustedKeys = opts.list('cache-upload-trusted-key') ?? [];
  for (const key of uploadTrustedKeys) {
    try {
      parsePublicKey(key);
    } catch (e) {
      throw new ConfigError(`--cache-upload-trusted-key: ${errorMessage(e)}`);
    }
  }
  if (requireTrustedSignature && uploadTrustedKeys.length === 0) {
    throw new ConfigError('--cache-require-trusted-signature needs at least one --cache-upload-trusted-key');
  }
  if (!requireTrustedSignature && uploadTrustedKeys.length > 0) {
    warnings.push('--cache-upload-trusted-key has no effect without --cache-require-trusted-signature');
  }

  const healthDetailsFrom = opts.list('health-details-from');
  for (const range of healthDetailsFrom) {
    try {
      parseCidr(range);
    } catch (e) {
      throw new ConfigError(`--health-details-from: ${errorMessage(e)}`);
    }
  }

  const home = ctx.homeDir ?? homedir();
  const netrc = opts.string('netrc-file');
  const advertiseUrl = parseAdvertiseUrl(opts.string('server-advertise-url'));

  return {
    logLevel: opts.choice('log-level'),
    prometheusEnabled: opts.bool('prometheus-enabled'),
    otel: { enabled: opts.bool('otel-enabled'), endpoint: parseOtelEndpoint(opts.string('otel-endpoint')) },
    server: {
      host,
      port,
      advertiseUrl,
      shutdownTimeoutMs: opts.number('server-shutdown-timeout'),
      requestIdleTimeoutMs: opts.number('server-request-idle-timeout'),
    },
    cache: {
      hostname,
      dataDir,
      tempPath: resolve(opts.string('cache-temp-path') || ctx.tempDir || tmpdir()),
      secretKeyPath: opts.string('cache-secret-key-path') || undefined,
      signNarinfo: opts.bool('cache-sign-narinfo'),
      priority: opts.number('cache-priority'),
      allowPut: opts.bool('cache-allow-put-verb'),
      allowDelete: opts.bool('cache-allow-delete-verb'),
      getToken,
      putToken,
      requireTrustedSignature,
      uploadTrustedKeys,
      maxSizeBytes: maxSize,
      maxNarSizeBytes: opts.number('cache-max-nar-size'),
      lru: schedule ? { schedule, timezone: opts.string('cache-lru-schedule-timezone') } : undefined,
      negativeTtlMs: opts.number('cache-negative-ttl'),
    },
    storage,
    database,
    upstream: {
      urls: upstreamUrls,
      publicKeys: upstreamPublicKeys,
      allowUnsigned,
      allowedOrigins,
      dialerTimeoutMs: opts.number('cache-upstream-dialer-timeout'),
      responseHeaderTimeoutMs: opts.number('cache-upstream-response-header-timeout'),
      maxConcurrentDownloads: opts.number('cache-upstream-max-concurrent-downloads'),
      netrcFile: netrc.startsWith('~/') ? join(home, netrc.slice(2)) : netrc,
      ...upstreamProxies(opts),
      caFile: opts.string('cache-upstream-ca-file') || undefined,
    },
    lock: {
      backend,
      allowDegradedMode: opts.bool('cache-lock-allow-degraded-mode'),
      downloadTtlMs: opts.number('cache-lock-download-ttl'),
      lruTtlMs: opts.number('cache-lock-lru-ttl'),
      retry: {
        maxAttempts: opts.number('cache-lock-retry-max-attempts'),
        initialDelayMs: opts.number('cache-lock-retry-initial-delay'),
        maxDelayMs: opts.number('cache-lock-retry-max-delay'),
        jitter: opts.bool('cache-lock-retry-jitter'),
      },
      keyPrefix: opts.string('cache-lock-redis-key-prefix'),
      redis: {
        addrs: redisAddrs,
        username: opts.string('cache-redis-username') || undefined,
        password: opts.string('cache-redis-password') || undefined,
        db: opts.number('cache-redis-db'),
        useTls: opts.bool('cache-redis-use-tls') || Boolean(opts.string('cache-redis-ca-file')),
        caFile: opts.string('cache-redis-ca-file') || undefined,
        redlockQuorum: opts.bool('cache-redis-redlock-quorum'),
        poolSize: opts.number('cache-redis-pool-size'),
      },
    },
    health: { detailsFrom: healthDetailsFrom },
    warnings,
  };
}

/** The forward proxy options, checked (errors name the option, never a proxy URL: it may carry credentials). */
function upstreamProxies(opts: Options): { httpProxy?: string; httpsProxy?: string; noProxy: string[] } {
  const proxies: { httpProxy?: string; httpsProxy?: string; noProxy: string[] } = {
    noProxy: opts.list('cache-upstream-no-proxy') ?? [],
  };
  for (const [flag, field] of [
    ['cache-upstream-http-proxy', 'httpProxy'],
    ['cache-upstream-https-proxy', 'httpsProxy'],
  ] as const) {
    const url = opts.string(flag)?.trim();
    if (!url) continue;
    try {
      parseProxyUrl(url);
    } catch (e) {
      throw new ConfigError(`--${flag}: ${errorMessage(e)}`);
    }
    proxies[field] = url;
  }
  try {
    new NoProxy(proxies.noProxy);
  } catch (e) {
    throw new ConfigError(`--cache-upstream-no-proxy: ${errorMessage(e)}`);
  }
  return proxies;
}

/** Refuses, before anything starts, an upstream that would be taken unverified without the operator saying so. */
function checkUpstreamTrust(urls: string[], publicKeys: string[], allowUnsigned: string[]): void {
  try {
    upstreamTrust(urls.map(parseUpstreamUrl), publicKeys.map(parsePublicKey), allowUnsigned);
  } catch (e) {
    throw new ConfigError(errorMessage(e));
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

function buildStorage(opts: Options, dataDir: string): StorageConfig {
  const local = opts.string('cache-storage-local');
  const bucket = opts.string('cache-storage-s3-bucket');
  if (local && bucket) {
    throw new ConfigError('exactly one storage backend: give --cache-storage-local or --cache-storage-s3-bucket, not both');
  }
  const s3Only = (
    [
      'cache-storage-s3-endpoint',
      'cache-storage-s3-region',
      'cache-storage-s3-access-key-id',
      'cache-storage-s3-secret-access-key',
    ] as const
  ).filter((flag) => opts.string(flag) !== undefined);
  if (!bucket && s3Only.length > 0) {
    throw new ConfigError(`--${s3Only[0]} is set but --cache-storage-s3-bucket is not`);
  }
  if (bucket) {
    const accessKeyId = opts.string('cache-storage-s3-access-key-id');
    const secretAccessKey = opts.string('cache-storage-s3-secret-access-key');
    if (Boolean(accessKeyId) !== Boolean(secretAccessKey)) {
      throw new ConfigError('--cache-storage-s3-access-key-id and --cache-storage-s3-secret-access-key go together');
    }
    return {
      kind: 's3',
      s3: {
        bucket,
        endpoint: opts.string('cache-storage-s3-endpoint'),
        region: opts.string('cache-storage-s3-region'),
        accessKeyId,
        secretAccessKey,
        forcePathStyle: opts.bool('cache-storage-s3-force-path-style'),
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

function buildDatabase(opts: Options, dataDir: string) {
  const url = opts.string('cache-database-url') || `sqlite:${join(dataDir, 'db', 'ncps.sqlite')}`;
  return {
    url,
    dialect: databaseDialect(url),
    poolMaxOpen: opts.number('cache-database-pool-max-open-conns'),
    poolMaxIdle: opts.number('cache-database-pool-max-idle-conns'),
  };
}
