import { Netrc, netrcCredentials } from './upstream.netrc';
import { basicAuthorization } from 'src/net';

/**
 * Where upstream requests may go, and which of them carry credentials. An upstream (or a man in the
 * middle of an http:// one: a narinfo's URL is not covered by its signature) must not be able to
 * point us at an internal address and have us hand the answer back, nor collect the credentials
 * meant for another host.
 */

/**
 * May a request made for the upstream whose origin is `home` (undefined: no configured upstream)
 * go to `target`? Only to that upstream's own origin, or to one the operator allowed.
 */
export function mayFetch(target: URL, home: string | undefined, allowed: ReadonlySet<string>): boolean {
  if (target.protocol !== 'http:' && target.protocol !== 'https:') return false;
  return target.origin === home || allowed.has(target.origin);
}

/** A redirect is followed under the same rule, and never from https down to http. */
export function mayRedirect(from: URL, to: URL, home: string | undefined, allowed: ReadonlySet<string>): boolean {
  if (from.protocol === 'https:' && to.protocol !== 'https:') return false;
  return mayFetch(to, home, allowed);
}

/** What credentials are chosen from: each configured upstream's origin and the credentials in its URL. */
export interface CredentialOwner {
  origin: string;
  authorization?: string;
}

/**
 * The Authorization header for a request to `url`: only when its origin (scheme, host and port) is a
 * configured upstream's, so that credentials never reach an allowed origin or a redirect target the
 * operator did not configure as an upstream, nor travel over http for an upstream configured as
 * https. Credentials written in that upstream's URL win; otherwise netrc, whose `default` entry thus
 * only ever serves configured upstreams that have no `machine` entry.
 */
export function credentialsFor(url: URL, upstreams: readonly CredentialOwner[], netrc: Netrc | null): string | undefined {
  const owners = upstreams.filter((upstream) => upstream.origin === url.origin);
  if (owners.length === 0) return undefined;
  const fromUrl = owners.find((owner) => owner.authorization !== undefined);
  if (fromUrl) return fromUrl.authorization;
  const credentials = netrc ? netrcCredentials(netrc, url.hostname) : undefined;
  return credentials ? basicAuthorization(credentials.login, credentials.password) : undefined;
}
