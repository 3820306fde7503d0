import { parseHash } from './hash';
import type { NarInfo } from './narinfo';
import { STORE_DIR } from './store-path';

/**
 * The exact text a narinfo Sig signs: `1;<StorePath>;<NarHash nix32>;<NarSize>;<references>`. URL,
 * Compression, FileHash and FileSize are not covered, so a proxy may rewrite them without re-signing.
 */
export function narInfoFingerprint(info: Pick<NarInfo, 'storePath' | 'narHash' | 'narSize' | 'references'>): string {
  // Nix keeps references in a sorted set, so it signs them sorted and deduplicated whatever order the
  // narinfo listed them in (plain code-unit order equals Nix's byte order for store path characters).
  const references = [...new Set(info.references)].sort().map((ref) => `${STORE_DIR}/${ref}`);
  const narHash = parseHash(info.narHash).toNix32String();
  return `1;${info.storePath};${narHash};${info.narSize};${references.join(',')}`;
}
