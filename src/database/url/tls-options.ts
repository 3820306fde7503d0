import { readFileSync } from 'node:fs';
import { ConnectionOptions } from 'node:tls';

/**
 * libpq's `sslmode` values, used for PostgreSQL and (for one vocabulary) MySQL URLs.
 * `allow` and `prefer` mean "TLS if the server offers it"; neither pg nor mysql2 can fall back
 * between TLS and plain text, so both connect without TLS: a URL never fails where libpq would
 * connect, at the price of no encryption against a server that offers it. Ask for `require` or
 * `verify-*` to insist on encryption.
 */
export const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
export type SslMode = (typeof SSL_MODES)[number];

export interface TlsSettings {
  mode: SslMode;
  /**
   * CA bundle to verify the server with (libpq `sslrootcert`); `system` (libpq 16): Node's built-in
   * trust store, as when it is absent, but insisting on `verify-full`.
   */
  rootCertPath?: string;
  /** Client certificate and key (libpq `sslcert`, `sslkey`). */
  certPath?: string;
  keyPath?: string;
}

export const TLS_PARAMS = ['sslmode', 'sslrootcert', 'sslcert', 'sslkey'] as const;

/** `sslrootcert=system`: the platform's trust store (here: Node's). */
const SYSTEM_ROOTS = 'system';

/** What pg and mysql2 pass on to tls.connect. */
export type TlsClientOptions = Pick<ConnectionOptions, 'ca' | 'cert' | 'key' | 'rejectUnauthorized' | 'checkServerIdentity'>;

/**
 * Reads `sslmode` & co. from URL parameters; the default is `disable` (see SSL_MODES), or `verify-full`
 * with `sslrootcert=system`, which (as in libpq) accepts no weaker mode.
 */
export function tlsSettings(params: URLSearchParams): TlsSettings {
  const systemRoots = params.get('sslrootcert') === SYSTEM_ROOTS;
  const mode = params.get('sslmode') ?? (systemRoots ? 'verify-full' : 'disable');
  if (!(SSL_MODES as readonly string[]).includes(mode)) {
    throw new Error(`sslmode must be one of ${SSL_MODES.join(', ')}`);
  }
  if (systemRoots && mode !== 'verify-full') throw new Error(`sslrootcert=system needs sslmode=verify-full, not ${mode}`);
  return {
    mode: mode as SslMode,
    rootCertPath: params.get('sslrootcert') ?? undefined,
    certPath: params.get('sslcert') ?? undefined,
    keyPath: params.get('sslkey') ?? undefined,
  };
}

/**
 * Node TLS options for the settings, or false for a plain connection. As in libpq, `require` encrypts
 * without checking the server's certificate (unless `sslrootcert` names a CA: then it is `verify-ca`),
 * `verify-ca` checks the chain but not the host name, and `verify-full` checks both. The chain is
 * checked against `sslrootcert`, or Node's built-in trust store when there is none (libpq would read
 * ~/.postgresql/root.crt). Certificate files are read here, once, at start.
 */
export function tlsOptions(settings: TlsSettings): TlsClientOptions | false {
  if (settings.mode === 'disable' || settings.mode === 'allow' || settings.mode === 'prefer') return false;
  const ownRoots = settings.rootCertPath !== undefined && settings.rootCertPath !== SYSTEM_ROOTS;
  const files: TlsClientOptions = {
    ...(ownRoots && { ca: readFileSync(settings.rootCertPath as string) }),
    ...(settings.certPath && { cert: readFileSync(settings.certPath) }),
    ...(settings.keyPath && { key: readFileSync(settings.keyPath) }),
  };
  // libpq checks the chain of a `require` connection when it is given a root certificate.
  const mode = settings.mode === 'require' && ownRoots ? 'verify-ca' : settings.mode;
  switch (mode) {
    case 'require':
      return { ...files, rejectUnauthorized: false };
    case 'verify-ca':
      return { ...files, rejectUnauthorized: true, checkServerIdentity: () => undefined };
    case 'verify-full':
      return { ...files, rejectUnauthorized: true };
  }
}
