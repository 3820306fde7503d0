import { createHash } from 'node:crypto';

/**
 * How logical keys map to files under a LocalStorage root.
 *
 * `nar/<name>` lives at `nar/<shard>/<name>`, where the shard is the first two hex digits of
 * sha256(<name>): 256 directories per logical directory, so a million NARs make ~4000 entries each.
 * The shard is a hash rather than the name's own first characters because NAR file names are nix32
 * sha256 digests, whose first character is always 0 or 1 (52 characters carry 260 bits, 256 used),
 * which would leave most shards empty and a few huge.
 *
 * Every file is exactly one level below its shard, so a file's key is its relative path with the
 * second-to-last segment removed, and `keyOf` inverts `pathOf`.
 */
export const SHARD_LENGTH = 2;

/** Root entries starting with a dot belong to the provider (keys cannot start with one). */
export const TEMP_DIR = '.tmp';

export function shardOf(name: string): string {
  return createHash('sha256').update(name).digest('hex').slice(0, SHARD_LENGTH);
}

/** Relative path (slash-separated) of the file holding `key`; the key must already be safe. */
export function pathOf(key: string): string {
  const slash = key.lastIndexOf('/');
  const dir = key.slice(0, slash + 1);
  const name = key.slice(slash + 1);
  return `${dir}${shardOf(name)}/${name}`;
}

/** The key stored at a relative file path, or null when the file is not where `pathOf` puts a key. */
export function keyOf(relativePath: string): string | null {
  const parts = relativePath.split('/');
  if (parts.length < 2) return null;
  const name = parts[parts.length - 1];
  const shard = parts[parts.length - 2];
  if (shard !== shardOf(name)) return null;
  return [...parts.slice(0, -2), name].join('/');
}

/**
 * The directory (relative, '' for the root) below which every key starting with `prefix` lives:
 * the prefix up to its last slash, e.g. `nar/` for `nar/1w`.
 */
export function listingDirOf(prefix: string): string {
  return prefix.slice(0, prefix.lastIndexOf('/') + 1);
}
