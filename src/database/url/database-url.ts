import { splitHostPort } from 'src/net';

/**
 * A `scheme://[user[:password]@][host][:port][/path][?query]` URL cut into its parts. Hand-rolled
 * rather than WHATWG `URL`, which rejects forms libpq accepts, e.g. `postgres://u:p@/db?host=/run/pg`
 * (credentials, no host, a socket directory). User, password and path are percent-decoded; reserved
 * characters in a password (`@ / ? #`) must be percent-encoded, as with libpq.
 */
export interface DatabaseUrlParts {
  scheme: string;
  username?: string;
  password?: string;
  /** `host`, `host:port`, `[v6]:port` or '' as written. */
  authority: string;
  path: string;
  params: URLSearchParams;
}

const PATTERN = /^([a-z][a-z0-9+.-]*):\/\/([^/?]*)(?:\/([^?]*))?(?:\?(.*))?$/is;

/** The parts, or null when the URL has no `scheme://` form. Errors never echo the URL. */
export function splitDatabaseUrl(url: string): DatabaseUrlParts | null {
  const match = PATTERN.exec(url);
  if (!match) return null;
  const [, scheme, authorityWithUser, rawPath = '', query = ''] = match;
  const at = authorityWithUser.lastIndexOf('@');
  const userinfo = at >= 0 ? authorityWithUser.slice(0, at) : undefined;
  const colon = userinfo?.indexOf(':') ?? -1;
  return {
    scheme: scheme.toLowerCase(),
    username: userinfo === undefined ? undefined : decode(colon >= 0 ? userinfo.slice(0, colon) : userinfo),
    password: userinfo !== undefined && colon >= 0 ? decode(userinfo.slice(colon + 1)) : undefined,
    authority: authorityWithUser.slice(at + 1),
    path: decode(rawPath),
    params: new URLSearchParams(query),
  };
}

/** The host and port of a database URL's authority (one host: several are refused). */
export function databaseHostPort(authority: string): { host?: string; port?: number } {
  if (authority.includes(',')) throw new Error('several hosts in one URL are not supported');
  const { host, port } = splitHostPort(authority);
  return { host: host || undefined, port };
}

/** Fails on query parameters we do not understand rather than silently ignoring a setting. */
export function rejectUnknownParams(params: URLSearchParams, known: readonly string[]): void {
  for (const name of params.keys()) {
    if (!known.includes(name)) throw new Error(`unknown parameter "${name}" (accepted: ${known.join(', ')})`);
  }
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new Error('malformed percent-encoding in user, password or path');
  }
}
