import { databaseHostPort, rejectUnknownParams, splitDatabaseUrl } from './database-url';
import { TLS_PARAMS, TlsSettings, tlsSettings } from './tls-options';

/** What a `mysql://` URL says, in mysql2 terms. MariaDB is reached with the same URL. */
export interface MysqlUrl {
  host?: string;
  port?: number;
  /** Unix socket of the server, e.g. `/run/mysqld/mysqld.sock`; replaces host and port. */
  socketPath?: string;
  user?: string;
  password?: string;
  database: string;
  tls: TlsSettings;
  connectTimeoutMs?: number;
}

/** TLS takes libpq's names (`sslmode=require`...) so both server kinds share one vocabulary. */
const PARAMS = ['socket', 'connect_timeout', ...TLS_PARAMS];

/**
 * Parses `mysql://[user[:password]@][host][:port]/database[?socket=PATH&sslmode=...]`.
 * Throws with a reason and never the URL itself (it may hold a password).
 */
export function parseMysqlUrl(url: string): MysqlUrl {
  const parts = splitDatabaseUrl(url);
  if (!parts || parts.scheme !== 'mysql') {
    throw new Error('expected mysql://[user[:password]@]host[:port]/database[?sslmode=...]');
  }
  const { params } = parts;
  rejectUnknownParams(params, PARAMS);
  if (!parts.path) throw new Error('the URL names no database (mysql://host/DATABASE)');
  const { host, port } = databaseHostPort(parts.authority);
  const timeout = params.get('connect_timeout');
  if (timeout !== null && !/^\d+$/.test(timeout)) throw new Error('connect_timeout must be whole seconds');
  return {
    host,
    port,
    socketPath: params.get('socket') ?? undefined,
    user: parts.username,
    password: parts.password,
    database: parts.path,
    tls: tlsSettings(params),
    connectTimeoutMs: timeout && timeout !== '0' ? Number(timeout) * 1000 : undefined,
  };
}
