/** The validated configuration every module receives (durations in ms, sizes in bytes). */
/** --cache-lock-backend's choices (the option table lists them from here). */
export const LOCK_BACKENDS = ['local', 'redis', 'postgres'] as const;
export type LockBackend = (typeof LOCK_BACKENDS)[number];
export type DatabaseDialect = 'sqlite' | 'postgres' | 'mysql';

export interface S3StorageConfig {
  bucket: string;
  endpoint?: string;
  region?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  forcePathStyle: boolean;
}

export type StorageConfig = { kind: 'local'; path: string } | { kind: 's3'; s3: S3StorageConfig };

export interface DatabaseConfig {
  url: string;
  dialect: DatabaseDialect;
  poolMaxOpen: number;
  poolMaxIdle: number;
}

export interface RedisConfig {
  addrs: string[];
  username?: string;
  password?: string;
  db: number;
  useTls: boolean;
  /** PEM CA bundle for TLS (a private CA); implies TLS. */
  caFile?: string;
  /** Several addresses are independent servers voting (Redlock quorum), not one Redis Cluster. Absent: false. */
  redlockQuorum?: boolean;
  poolSize: number;
}

export interface LockConfig {
  backend: LockBackend;
  allowDegradedMode: boolean;
  downloadTtlMs: number;
  lruTtlMs: number;
  retry: { maxAttempts: number; initialDelayMs: number; maxDelayMs: number; jitter: boolean };
  keyPrefix: string;
  redis: RedisConfig;
}

export interface UpstreamConfig {
  urls: string[];
  publicKeys: string[];
  /** Upstream URLs (as configured) accepted without a public key: served unverified, never signed by us. */
  allowUnsigned: string[];
  /** Origins (`scheme://host[:port]`) besides the upstreams' own that NAR URLs and redirects may lead to. */
  allowedOrigins: string[];
  dialerTimeoutMs: number;
  responseHeaderTimeoutMs: number;
  /** Most NAR downloads from upstreams at once (clients first, prefetches after). */
  maxConcurrentDownloads: number;
  netrcFile: string;
  /** Forward proxy for http:// upstreams (HTTP_PROXY), for https:// ones (HTTPS_PROXY, by CONNECT); may carry the proxy's credentials. */
  httpProxy?: string;
  httpsProxy?: string;
  /** Hosts reached without the proxy (NO_PROXY, curl's rules). */
  noProxy: string[];
  /** PEM CAs trusted for https upstreams besides the bundled ones. */
  caFile?: string;
}

export interface OtelConfig {
  enabled: boolean;
  /** OTLP/HTTP base URL (`--otel-endpoint`); undefined: the exporter's standard OTEL_EXPORTER_OTLP_* variables. */
  endpoint?: string;
}

export interface NcpsConfig {
  logLevel: string;
  prometheusEnabled: boolean;
  /** OpenTelemetry tracing; absent or not enabled: no OpenTelemetry package is loaded, nothing is sent. */
  otel?: OtelConfig;
  server: {
    host: string;
    port: number;
    /** --server-advertise-url when given; otherwise this instance's own address, known once it listens (src/cluster). */
    advertiseUrl?: string;
    shutdownTimeoutMs: number;
    /** How long a client may send nothing (upload body, headers) or read nothing before it is cut. */
    requestIdleTimeoutMs: number;
  };
  cache: {
    hostname: string;
    dataDir: string;
    tempPath: string;
    secretKeyPath?: string;
    signNarinfo: boolean;
    /** Priority advertised in /nix-cache-info (--cache-priority). */
    priority: number;
    allowPut: boolean;
    allowDelete: boolean;
    getToken?: string;
    /** Token for writes (PUT, DELETE); --cache-put-token, else the get token; undefined = writes are open. */
    putToken?: string;
    /** Uploaded narinfos must carry a signature by one of uploadTrustedKeys (name:base64). */
    requireTrustedSignature: boolean;
    uploadTrustedKeys: string[];
    maxSizeBytes?: number;
    /** Largest NAR file accepted (uploads, and downloads of unknown size). */
    maxNarSizeBytes: number;
    lru?: { schedule: string; timezone: string };
    /** How long an upstream "not found" for a narinfo is remembered; 0 = not at all. */
    negativeTtlMs: number;
  };
  storage: StorageConfig;
  database: DatabaseConfig;
  upstream: UpstreamConfig;
  lock: LockConfig;
  /** Clients in these CIDR ranges see /health's full report without a token. */
  health: { detailsFrom: string[] };
  /** Problems that do not stop the start but that the operator must see. */
  warnings: string[];
}
