/** What ncps reads from an upstream's `nix-cache-info`. */
export interface CacheInfo {
  storeDir?: string;
  priority?: number;
}

/** Nix's priority for an http binary cache whose nix-cache-info names none. */
export const DEFAULT_PRIORITY = 50;

/**
 * Parses `Key: value` lines as Nix does: both sides trimmed, unknown keys and lines without a colon
 * ignored, a Priority that is not an integer ignored (Nix's string2Int leaves the default).
 */
export function parseCacheInfo(text: string): CacheInfo {
  const info: CacheInfo = {};
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const key = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    if (key === 'StoreDir') info.storeDir = value;
    if (key === 'Priority' && /^-?[0-9]{1,9}$/.test(value)) info.priority = Number(value);
  }
  return info;
}
