/**
 * `--cache-upstream-allowed-origin`: `scheme://host[:port]` of an http(s) URL, nothing else (a path,
 * query or credentials would suggest a narrower rule than the origin-wide one applied). Normalised
 * like URL.origin: lower-case host, default port left out.
 */
export function parseAllowedOrigin(text: string): string {
  const url = URL.canParse(text) ? new URL(text) : null;
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new Error('an allowed origin must be an http(s) origin (scheme://host[:port])');
  }
  // The value is not quoted in errors: it could carry credentials.
  if (url.username !== '' || url.password !== '') throw new Error('an allowed origin must not carry credentials');
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '') {
    throw new Error(`${url.origin}${url.pathname} is not an origin: leave out the path and query (scheme://host[:port])`);
  }
  return url.origin;
}
