import { readFileSync } from 'node:fs';
import { ConnectionOptions } from 'node:tls';

/**
 * libpq's `sslmode` values, used for PostgreSQL and (for one vocabulary) MySQL URLs.
 * `allow` and `prefer` mean "TLS if the server offers it"; neither pg nor mysql2 can fall back
 * from TLS to plain text, so they connect without TLS (what libpq ends up doing against a server
 * without TLS). Ask for `require` or `verify-*` to insist on encryption.
 */
export const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
export type SslMode = (typeof SSL_MODES)[number];

export interface TlsSettings {
  mode: SslMode;
  /** CA bundle to verify the server with (libpq `sslrootcert`). */
  rootCertPath?: string;
  /** Client certificate and key (libpq `sslcert`, `sslkey`). */
  certPath?: string;
  keyPath?: string;
}

export const TLS_PARAMS = ['sslmode', 'sslrootcert', 'sslcert', 'sslkey'] as const;

/** What pg and mysql2 pass on to tls.connect. */
export type TlsClientOptions = Pick<ConnectionOptions, 'ca' | 'cert' | 'key' | 'rejectUnauthorized' | 'checkServerIdentity'>;

/** Reads `sslmode` & co. from URL parameters; the default is `disable` (see SSL_MODES). */
export function tlsSettings(params: URLSearchParams): TlsSettings {
  const mode = params.get('sslmode') ?? 'disable';
  if (!(SSL_MODES as readonly string[]).includes(mode)) {
    throw new Error(`sslmode must be one of ${SSL_MODES.join(', ')}`);
  }
  return {
    mode: mode as SslMode,
    rootCertPath: params.get('sslrootcert') ?? undefined,
    certPath: params.get('sslcert') ?? undefined,
    keyPath: params.get('sslkey') ?? undefined,
  };
}

/**
 * Node TLS options for the settings, or false for a plain connection. As in libpq, `require` encrypts
 * without checking the server's certificate, `verify-ca` checks the chain but not the host name, and
 * `verify-full` checks both. Certificate files are read here, once, at start.
 */
export function tlsOptions(settings: TlsSettings): TlsClientOptions | false {
  if (settings.mode === 'disable' || settings.mode === 'allow' || settings.mode === 'prefer') return false;
  const files: TlsClientOptions = {
    ...(settings.rootCertPath && { ca: readFileSync(settings.rootCertPath) }),
    ...(settings.certPath && { cert: readFileSync(settings.certPath) }),
    ...(settings.keyPath && { key: readFileSync(settings.keyPath) }),
  };
  switch (settings.mode) {
    case 'require':
      return { ...files, rejectUnauthorized: false };
    case 'verify-ca':
      return { ...files, rejectUnauthorized: true, checkServerIdentity: () => undefined };
    case 'verify-full':
      return { ...files, rejectUnauthorized: true };
  }
}
