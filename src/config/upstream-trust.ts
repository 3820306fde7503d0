import { parseUpstreamUrl, UpstreamTarget } from 'src/net';
import { PublicKey } from 'src/nix';

// A rule of the configuration, checked when it is built (before anything starts), that the upstream
// module applies again to give each upstream its keys.

/** `<host>-<N>`, the conventional name of a cache's key (`cache.nixos.org-1`). */
const HOST_KEY_NAME = /^(.+)-[0-9]+$/;

/**
 * Matches trusted keys to upstreams. A key named `<host>-<N>` applies to the upstreams on that host;
 * a key whose name matches no upstream host applies to every upstream, so that a key is never
 * silently ignored (ncps dropped it, and left those upstreams unverified without a word). Returns,
 * for each upstream in the order given, the keys its narinfos must be signed with (maybe none: see
 * upstreamTrust).
 */
export function assignPublicKeys(upstreams: readonly { url: string; hostname: string }[], publicKeys: readonly PublicKey[]): PublicKey[][] {
  const hostnames = new Set(upstreams.map((upstream) => upstream.hostname));
  const keyHost = (key: PublicKey): string | undefined => {
    const host = HOST_KEY_NAME.exec(key.name)?.[1].toLowerCase();
    return host !== undefined && hostnames.has(host) ? host : undefined;
  };
  const shared = publicKeys.filter((key) => keyHost(key) === undefined);
  return upstreams.map((upstream) => [...publicKeys.filter((key) => keyHost(key) === upstream.hostname), ...shared]);
}

export interface UpstreamTrust {
  /** For each upstream, in the order given: the keys its narinfos must be signed with. */
  keys: PublicKey[][];
  /** For the startup log: upstreams accepted without a key, and allowances that change nothing. */
  warnings: string[];
}

/**
 * The keys of each upstream, with the rule that nothing is taken unverified by accident: an
 * upstream left without a key is refused (the error says how to fix it) unless `allowUnsigned`
 * names it (as in `--cache-upstream-url`; compared without query and credentials). Its narinfos are
 * then taken as they come and never signed by us. An `allowUnsigned` entry naming no upstream is an
 * error too: a typo there must not go unnoticed.
 */
export function upstreamTrust(
  upstreams: readonly UpstreamTarget[],
  publicKeys: readonly PublicKey[],
  allowUnsigned: readonly string[],
): UpstreamTrust {
  const allowed = new Set<string>();
  for (const entry of allowUnsigned) {
    let url: string;
    try {
      url = parseUpstreamUrl(entry).url;
    } catch (error) {
      throw new Error(`--cache-upstream-allow-unsigned: ${(error as Error).message}`);
    }
    if (!upstreams.some((upstream) => upstream.url === url)) {
      throw new Error(`--cache-upstream-allow-unsigned: ${url} is not one of the upstreams (--cache-upstream-url)`);
    }
    allowed.add(url);
  }
  const keys = assignPublicKeys(upstreams, publicKeys);
  const warnings: string[] = [];
  upstreams.forEach((upstream, index) => {
    const unsigned = keys[index].length === 0;
    if (unsigned && !allowed.has(upstream.url)) {
      throw new Error(
        `upstream ${upstream.url} has no public key, so nothing it serves could be verified. Give its key with ` +
          `--cache-upstream-public-key, or accept it unverified with --cache-upstream-allow-unsigned=${upstream.url} ` +
          '(its narinfos are then served with its own signatures only, never ours)',
      );
    }
    if (unsigned) {
      warnings.push(`upstream ${upstream.url} has no public key: its narinfos are not verified, and served without our signature`);
    } else if (allowed.has(upstream.url)) {
      warnings.push(`--cache-upstream-allow-unsigned=${upstream.url} changes nothing: that upstream has a public key`);
    }
  });
  return { keys, warnings };
}
