import { PublicKey } from 'src/nix';

export interface KeyAssignment {
  /** For each upstream, in the order given: the keys its narinfos must be signed with (none = unverified). */
  keys: PublicKey[][];
  /** For the startup log: one line per upstream left without a key. */
  warnings: string[];
}

/** `<host>-<N>`, the conventional name of a cache's key (`cache.nixos.org-1`). */
const HOST_KEY_NAME = /^(.+)-[0-9]+$/;

/**
 * Matches trusted keys to upstreams. A key named `<host>-<N>` applies to the upstreams on that host;
 * a key whose name matches no upstream host applies to every upstream, so that a key is never
 * silently ignored (ncps dropped it, and left those upstreams unverified without a word). An
 * upstream that still has no key is unverified, and said so in a warning.
 */
export function assignPublicKeys(
  upstreams: readonly { url: string; hostname: string }[],
  publicKeys: readonly PublicKey[],
): KeyAssignment {
  const hostnames = new Set(upstreams.map((upstream) => upstream.hostname));
  const keyHost = (key: PublicKey): string | undefined => {
    const host = HOST_KEY_NAME.exec(key.name)?.[1].toLowerCase();
    return host !== undefined && hostnames.has(host) ? host : undefined;
  };
  const shared = publicKeys.filter((key) => keyHost(key) === undefined);
  const keys = upstreams.map((upstream) => [
    ...publicKeys.filter((key) => keyHost(key) === upstream.hostname),
    ...shared,
  ]);
  const warnings = upstreams
    .filter((_, index) => keys[index].length === 0)
    .map((upstream) => `upstream ${upstream.url} has no public key: its narinfos are not verified`);
  return { keys, warnings };
}
