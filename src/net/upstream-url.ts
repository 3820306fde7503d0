import { urlAuthorization } from './url-credentials';

/** One `--cache-upstream-url`, split into what the upstream module needs. */
export interface UpstreamTarget {
  /** Scheme, host and path, without query, credentials or trailing slash: what logs and callers see. */
  url: string;
  /** `scheme://host[:port]` (URL.origin): where its requests may go and its credentials may be sent. */
  origin: string;
  /** `host[:port]`: the metrics label and the name in messages. */
  host: string;
  /** Lower-case host name without port: what key names and netrc `machine` entries are matched against. */
  hostname: string;
  /** `?priority=N`, which beats the upstream's own nix-cache-info. */
  priorityOverride?: number;
  /** `?max-connections=N`: most connections open to this upstream at once, per pool (see UpstreamPools). */
  maxConnections: number;
  /** Basic credentials written into the URL (`https://user:pass@host`), sent to that host only. */
  authorization?: string;
}

/** Connections per pool to an upstream without `?max-connections=`, and to an allowed origin. */
export const DEFAULT_MAX_CONNECTIONS = 64;

/**
 * Parses a configured upstream URL. Query parameters other than `priority` and `max-connections` are dropped: like Nix's
 * store URL parameters they are settings, and the cache's files live under the path alone.
 * Errors never quote the URL, which may carry credentials.
 */
export function parseUpstreamUrl(text: string): UpstreamTarget {
  let parsed: URL;
  try {
    parsed = new URL(text);
  } catch {
    throw new Error('an upstream URL is not a valid URL');
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new Error(`upstream ${parsed.host}: only http and https upstreams are supported`);
  }
  const target: UpstreamTarget = {
    url: `${parsed.protocol}//${parsed.host}${parsed.pathname.replace(/\/+$/, '')}`,
    origin: parsed.origin,
    host: parsed.host,
    hostname: parsed.hostname.toLowerCase(),
    maxConnections: DEFAULT_MAX_CONNECTIONS,
  };
  const priority = parsed.searchParams.get('priority');
  if (priority !== null) {
    if (!/^[0-9]{1,9}$/.test(priority)) {
      throw new Error(`upstream ${parsed.host}: ?priority= must be a non-negative integer`);
    }
    target.priorityOverride = Number(priority);
  }
  const maxConnections = parsed.searchParams.get('max-connections');
  if (maxConnections !== null) {
    if (!/^[0-9]{1,4}$/.test(maxConnections) || Number(maxConnections) < 1 || Number(maxConnections) > 1024) {
      throw new Error(`upstream ${parsed.host}: ?max-connections= must be a whole number from 1 to 1024`);
    }
    target.maxConnections = Number(maxConnections);
  }
  const authorization = urlAuthorization(parsed);
  if (authorization) target.authorization = authorization;
  return target;
}
