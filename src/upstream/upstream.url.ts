/**
 * The absolute URL of a narinfo's opaque `URL:` field, the way Nix resolves it: an http(s) URL is
 * taken as is, anything else is a path appended to the cache's base (query string kept). Returns
 * null for other schemes (file:, s3:...), which must never make us read from elsewhere.
 */
export function resolveNarUrl(baseUrl: string, narUrl: string): string | null {
  const absolute = /^https?:\/\//i.test(narUrl);
  if (!absolute && /^[a-z][a-z0-9+.-]*:/i.test(narUrl)) return null;
  try {
    return new URL(absolute ? narUrl : `${baseUrl}/${narUrl}`).href;
  } catch {
    return null;
  }
}
