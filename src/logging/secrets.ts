import { NcpsConfig } from 'src/config/config';

/**
 * Secrets shorter than this are not searched for in log lines: masking every "abc" in every line would
 * garble the logs while protecting nothing worth the name. Such values are still kept out of the
 * fields known to carry secrets (REDACTED_PATHS).
 */
export const MIN_MASKED_SECRET_LENGTH = 4;

export const MASK = '[redacted]';

/** Query parameters that carry secrets in the URLs we accept (database, upstream). */
const SECRET_PARAM = /[?&](?:password|pass|pwd|sslpassword|secret|token)=([^&#]*)/gi;

/**
 * The secret values of a configuration: the token, S3 keys, Redis password, and the passwords inside
 * the database, upstream and proxy URLs (as written, decoded and re-encoded, since a driver's message may
 * quote any of them).
 */
export function secretValues(config: NcpsConfig): string[] {
  const values = [config.cache.getToken, config.cache.putToken, config.lock.redis.password];
  if (config.storage.kind === 's3') values.push(config.storage.s3.accessKeyId, config.storage.s3.secretAccessKey);
  const proxies = [config.upstream.httpProxy, config.upstream.httpsProxy].filter((url): url is string => url !== undefined);
  for (const url of [config.database.url, ...config.upstream.urls, ...proxies]) values.push(...urlSecrets(url));
  const present = values.filter((v): v is string => typeof v === 'string' && v.length > 0);
  return [...new Set(present.flatMap((v) => [v, safeDecode(v), encodeURIComponent(safeDecode(v))]))];
}

function urlSecrets(url: string): string[] {
  const found: string[] = [];
  // Userinfo as written: up to the last `@` before the path, password after the first `:`.
  const authority = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i.exec(url)?.[1] ?? '';
  const at = authority.lastIndexOf('@');
  const colon = authority.indexOf(':');
  if (at >= 0 && colon >= 0 && colon < at) found.push(authority.slice(colon + 1, at));
  for (const match of url.matchAll(SECRET_PARAM)) found.push(match[1]);
  return found;
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** A JSON string literal, escapes included. */
const JSON_STRING = /"(?:[^"\\]|\\.)*"/g;

/**
 * A function that replaces every secret value inside the string literals of a JSON log line, or
 * undefined when there is nothing to mask. Working on serialised lines catches secrets wherever a
 * library put them (an error's message, a failed command's arguments, a URL). Each literal holding a
 * secret is decoded, masked and encoded again, so every line stays valid JSON.
 */
export function secretMasker(secrets: readonly string[]): ((line: string) => string) | undefined {
  // Longest first, so that a value containing another one is masked whole.
  const values = [...new Set(secrets.filter((s) => s.length >= MIN_MASKED_SECRET_LENGTH))].sort((a, b) => b.length - a.length);
  if (values.length === 0) return undefined;
  // How each value looks inside a JSON string: a cheap test that most lines pass untouched.
  const encoded = values.map((v) => JSON.stringify(v).slice(1, -1));
  const maskLiteral = (literal: string): string => {
    const text = JSON.parse(literal) as string;
    const masked = values.reduce((t, v) => t.split(v).join(MASK), text);
    return masked === text ? literal : JSON.stringify(masked);
  };
  return (line) => (encoded.some((form) => line.includes(form)) ? line.replace(JSON_STRING, maskLiteral) : line);
}
