import { parse } from 'pg-connection-string';
import { ConfigError } from 'src/config/option';
import { parsePort } from 'src/net';
import { rejectUnknownParams } from './database-url';
import { redactUrl } from './redact-url';
import { TLS_PARAMS, TlsClientOptions, TlsSettings, tlsOptions, tlsSettings } from './tls-options';

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

/**
 * The `pg` client options of the configured PostgreSQL URL: what every PostgreSQL connection of ncps
 * is opened with (the TypeORM query pool, the lock sessions, the migration lock), so that they can
 * never disagree on where to connect or how to check the server.
 */
export interface PgConnectionOptions {
  host?: string;
  port?: number;
  user?: string;
  password?: string;
  database?: string;
  /** Always set (false: plain text), so pg never falls back to PGSSLMODE or its own sslmode reading. */
  ssl: TlsClientOptions | false;
  application_name?: string;
  connectionTimeoutMillis?: number;
}

/** The subset of libpq connection parameters we honour; `host` may name a unix socket directory. */
const PARAMS = ['host', 'port', 'user', 'password', 'application_name', 'connect_timeout', ...TLS_PARAMS];

const SCHEME = /^postgres(?:ql)?:\/\/([^/?]*)/i;

/**
 * Parses a libpq-style URL: `postgresql://[user[:password]@][host][:port][/dbname][?param=value&...]`,
 * with pg-connection-string (the parser `pg` itself uses) for its structure; the TLS parameters are
 * ours (tls-options.ts), because pg's reading of `sslmode` differs from libpq's.
 * Throws with a reason and never the URL itself (it may hold a password).
 */
export function parsePostgresUrl(url: string): PostgresUrl {
  const authority = SCHEME.exec(url)?.[1];
  if (authority === undefined) throw new Error('expected postgres://[user[:password]@]host[:port]/database[?sslmode=...]');
  if (authority.slice(authority.lastIndexOf('@') + 1).includes(',')) throw new Error('several hosts in one URL are not supported');
  if (url.includes('#')) throw new Error('"#" must be percent-encoded (%23) in a database URL');
  const q = url.indexOf('?');
  const params = new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
  rejectUnknownParams(params, PARAMS);
  const tls = tlsSettings(params);
  // pg-connection-string reads certificate files and warns about sslmode itself: it gets the rest only.
  const rest = new URLSearchParams([...params].filter(([name]) => !(TLS_PARAMS as readonly string[]).includes(name)));
  const query = rest.toString();
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(q < 0 ? url : `${url.slice(0, q)}${query ? `?${query}` : ''}`);
  } catch {
    // Its errors may quote the URL.
    throw new Error('malformed URL (percent-encode reserved characters such as @ / ? : in user, password and database)');
  }
  const port = parsed.port ? String(parsed.port) : '';
  const timeout = params.get('connect_timeout');
  if (timeout !== null && !/^\d+$/.test(timeout)) throw new Error('connect_timeout must be whole seconds');
  return {
    host: parsed.host || undefined,
    port: port ? parsePort(port) : undefined,
    user: parsed.user || undefined,
    password: parsed.password || undefined,
    database: parsed.database || undefined,
    tls,
    applicationName: params.get('application_name') ?? undefined,
    // libpq: 0 means wait forever, as does leaving it unset here.
    connectTimeoutMs: timeout && timeout !== '0' ? Number(timeout) * 1000 : undefined,
  };
}

/**
 * The one mapping of the configured PostgreSQL URL onto `pg` options, TLS included (libpq's sslmode
 * semantics, see tlsOptions). As in libpq, TLS is not used over a unix socket, whatever sslmode says.
 * A malformed URL is a ConfigError showing the URL with its password masked.
 */
export function postgresConnectionOptions(url: string): PgConnectionOptions {
  try {
    const parsed = parsePostgresUrl(url);
    const overSocket = parsed.host?.startsWith('/') ?? false;
    return {
      host: parsed.host,
      port: parsed.port,
      user: parsed.user,
      password: parsed.password,
      database: parsed.database,
      ssl: overSocket ? false : tlsOptions(parsed.tls),
      application_name: parsed.applicationName,
      connectionTimeoutMillis: parsed.connectTimeoutMs,
    };
  } catch (e) {
    throw new ConfigError(`database URL ${redactUrl(url)}: ${(e as Error).message}`);
  }
}
