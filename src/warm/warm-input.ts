import { STORE_DIR, isStorePathBaseName, isStorePathHash } from 'src/nix';

/** What a warm request names, line by line: the store path hashes, and the entries that name nothing. */
export interface WarmTargets {
  hashes: string[];
  /** Entries that name no store path, as given (trimmed), and why. */
  invalid: InvalidEntry[];
}

export interface InvalidEntry {
  entry: string;
  reason: string;
}

/**
 * One entry → its store path hash, or undefined: a store path (`/nix/store/<hash>-<name>`), its base
 * name (`<hash>-<name>`) or the bare 32-character hash (the name of `<hash>.narinfo`).
 */
export function parseWarmTarget(entry: string): string | undefined {
  const text = entry.trim();
  const base = text.startsWith(`${STORE_DIR}/`) ? text.slice(STORE_DIR.length + 1) : text;
  if (base.length === 32 && base === text) return isStorePathHash(base) ? base : undefined;
  return isStorePathBaseName(base) ? base.slice(0, 32) : undefined;
}

/** Entries → hashes (each once, in order) and the invalid entries. */
export function parseWarmTargets(entries: readonly string[]): WarmTargets {
  const hashes = new Set<string>();
  const invalid: InvalidEntry[] = [];
  for (const entry of entries) {
    const hash = parseWarmTarget(entry);
    if (hash) hashes.add(hash);
    else invalid.push({ entry: entry.trim(), reason: 'neither a store path nor a store path hash' });
  }
  return { hashes: [...hashes], invalid };
}

/**
 * The entries of a text with one per line (`nix path-info -r` output, a file of hashes): blank lines
 * and `#` comments are skipped.
 */
export function warmLines(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}
