/** The validated configuration every module receives (durations in ms, sizes in bytes). */
export type LockBackend = 'local' | 'redis' | 'postgres';
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
  dialerTimeoutMs: number;
  responseHeaderTimeoutMs: number;
  netrcFile: string;
}

export interface NcpsConfig {
  logLevel: string;
  prometheusEnabled: boolean;
  server: { host: string; port: number; advertiseUrl: string; shutdownTimeoutMs: number };
  cache: {
    hostname: string;
    dataDir: string;
    tempPath: string;
    secretKeyPath?: string;
    signNarinfo: boolean;
    allowPut: boolean;
    allowDelete: boolean;
    getToken?: string;
    maxSizeBytes?: number;
    /** Largest NAR file accepted (uploads, and downloads of unknown size). */
    maxNarSizeBytes: number;
    lru?: { schedule: string; timezone: string };
  };
  storage: StorageConfig;
  database: DatabaseConfig;
  upstream: UpstreamConfig;
  lock: LockConfig;
  /** Problems that do not stop the start but that the operator must see. */
  warnings: string[];
}
