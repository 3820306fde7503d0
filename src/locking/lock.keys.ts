/**
 * Lock keys, as callers pass them to LockPort (the backend adds the configured prefix, so the Redis key
 * of `downloadNarKey(h)` is `ncps:lock:download:nar:<h>`, as docs/ha.md documents).
 *
 * The first segment of a key is its *type* in the metrics (`download`, `lru`, `cache`); everything but
 * the last segment is its `lock_type` in the logs (`download:nar`), and the last segment its `hash`.
 */
export const LRU_LOCK_KEY = 'lru';

/** Held while one instance downloads a NAR, so the others wait for it instead of downloading it again. */
export const downloadNarKey = (hash: string): string => `download:nar:${hash}`;
export const downloadNarInfoKey = (hash: string): string => `download:narinfo:${hash}`;

/**
 * The hash part of a stored NAR's key (`nar/<hash>.nar.xz` → `<hash>`): what its download and read
 * locks are named by, wherever they are taken (download, serving, LRU, fsck).
 */
export const narKeyHash = (narKey: string): string => narKey.slice(narKey.lastIndexOf('/') + 1).split('.')[0];

/** Shared while a NAR is served; the LRU takes it exclusively before deleting. */
export const narReadKey = (hash: string): string => `cache:nar:${hash}`;

/** Types whose metric series exist (at 0) from the start, so dashboards and alerts see them at once. */
export const KNOWN_LOCK_TYPES = ['download', 'lru', 'cache'] as const;

/** The metric `type` label of a key: its first segment. */
export function lockType(key: string): string {
  const colon = key.indexOf(':');
  return colon < 0 ? key : key.slice(0, colon);
}

/** The structured log fields naming a key: `{ lock_type: 'download:nar', hash: '<h>' }`, `{ lock_type: 'lru' }`. */
export function lockLogFields(key: string): { lock_type: string; hash?: string } {
  const colon = key.lastIndexOf(':');
  return colon < 0 ? { lock_type: key } : { lock_type: key.slice(0, colon), hash: key.slice(colon + 1) };
}
