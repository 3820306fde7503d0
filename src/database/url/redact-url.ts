/** Query parameters whose values are secrets in the URL dialects we accept. */
const SECRET_PARAM = /^(password|pass|pwd|sslpassword|secret|token)$/i;
const MASK = '***';

/**
 * The URL with its credentials masked, safe for logs and error messages: the password and secret
 * query parameters become `***`. A URL whose shape is ambiguous (an `@` past the host part, as an
 * unencoded `/` in a password produces) keeps only its scheme: we cannot tell where its secrets are.
 */
export function redactUrl(url: string): string {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1] ?? '';
  const redacted = `${scheme}:<URL redacted>`;
  // Same cut as splitDatabaseUrl: the authority runs to the first `/` or `?`.
  const match = /^([a-z][a-z0-9+.-]*:\/\/)([^/?]*)(.*)$/is.exec(url);
  if (!match) {
    // `sqlite:PATH` has no authority and no secrets.
    return /^sqlite3?$/i.test(scheme) && !url.includes('@') ? url : redacted;
  }
  const [, prefix, authority, rest] = match;
  if (rest.includes('@')) return redacted;
  const at = authority.lastIndexOf('@');
  const userinfo = authority.slice(0, Math.max(at, 0));
  const colon = userinfo.indexOf(':');
  const user = colon >= 0 ? `${userinfo.slice(0, colon)}:${MASK}@` : at >= 0 ? `${userinfo}@` : '';
  return `${prefix}${user}${authority.slice(at + 1)}${maskSecretParams(rest)}`;
}

function maskSecretParams(pathAndQuery: string): string {
  const q = pathAndQuery.indexOf('?');
  if (q < 0) return pathAndQuery;
  const params = pathAndQuery
    .slice(q + 1)
    .split('&')
    .map((param) => {
      const eq = param.indexOf('=');
      return eq >= 0 && SECRET_PARAM.test(decodeName(param.slice(0, eq))) ? `${param.slice(0, eq)}=${MASK}` : param;
    });
  return `${pathAndQuery.slice(0, q + 1)}${params.join('&')}`;
}

function decodeName(name: string): string {
  try {
    return decodeURIComponent(name);
  } catch {
    return name;
  }
}
