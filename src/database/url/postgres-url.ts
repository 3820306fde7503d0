import { rejectUnknownParams, parsePort, splitDatabaseUrl, splitHostPort } from './database-url';
import { TLS_PARAMS, TlsSettings, tlsSettings } from './tls-options';

/** What a `postgres://` / `postgresql://` URL says, in node-postgres terms. */
export interface PostgresUrl {
  /** A host name, an IP, or a directory holding the server's unix socket (`/var/run/postgresql`). */
  host?: string;
  port?: number;
  user?: string;
  password?: string;
  database?: string;
  tls: TlsSettings;
  applicationName?: string;
  connectTimeoutMs?: number;
}

/** The subset of libpq connection parameters we honour; `host` may name a unix socket directory. */
const PARAMS = ['host', 'port', 'user', 'password', 'application_name', 'connect_timeout', ...TLS_PARAMS];

/**
 * Parses a libpq-style URL: `postgresql://[user[:password]@][host][:port][/dbname][?param=value&...]`.
 * Throws with a reason and never the URL itself (it may hold a password).
 */
export function parsePostgresUrl(url: string): PostgresUrl {
  const parts = splitDatabaseUrl(url);
  if (!parts || (parts.scheme !== 'postgres' && parts.scheme !== 'postgresql')) {
    throw new Error('expected postgres://[user[:password]@]host[:port]/database[?sslmode=...]');
  }
  const { params } = parts;
  rejectUnknownParams(params, PARAMS);
  const fromAuthority = splitHostPort(parts.authority);
  const port = params.get('port');
  const timeout = params.get('connect_timeout');
  if (timeout !== null && !/^\d+$/.test(timeout)) throw new Error('connect_timeout must be whole seconds');
  return {
    host: params.get('host') || fromAuthority.host,
    port: port ? parsePort(port) : fromAuthority.port,
    user: params.get('user') ?? parts.username,
    password: params.get('password') ?? parts.password,
    database: parts.path || undefined,
    tls: tlsSettings(params),
    applicationName: params.get('application_name') ?? undefined,
    // libpq: 0 means wait forever, as does leaving it unset here.
    connectTimeoutMs: timeout && timeout !== '0' ? Number(timeout) * 1000 : undefined,
  };
}
