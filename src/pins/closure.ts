/**
 * The store path hashes a narinfo refers to: the hash part of each base name of its References
 * (`<hash>-<name>`, space-separated), without `self` (a path referring to itself protects nothing
 * more) and without duplicates. Malformed entries are skipped.
 */
export function referencedHashes(refs: string, self?: string): string[] {
  const hashes = new Set<string>();
  for (const name of refs.split(' ')) {
    if (name.length < 33 || name[32] !== '-') continue;
    const hash = name.slice(0, 32);
    if (hash !== self) hashes.add(hash);
  }
  return [...hashes];
}

/** A stored narinfo as the closure walk reads it. */
export interface ClosureNode {
  hash: string;
  /** Its NAR (= nar_files.key). */
  url: string;
  refs: string;
}

/** The stored part of a closure: hash → the NAR of that narinfo. */
export type Closure = Map<string, string>;

/**
 * The closure of `roots` among the stored narinfos: the roots and, transitively, everything their
 * References name. `load` reads the stored narinfos among some hashes (absent ones are simply not
 * returned: a missing path ends that branch). Breadth first, one `load` per level and batch, each
 * hash asked for once, so cycles end and the cost is the size of the closure, not of the cache.
 */
export async function walkClosure(roots: readonly string[], load: (hashes: string[]) => Promise<ClosureNode[]>): Promise<Closure> {
  const closure: Closure = new Map();
  const asked = new Set<string>(roots);
  let frontier = [...asked];
  while (frontier.length > 0) {
    const next: string[] = [];
    for (const node of await load(frontier)) {
      closure.set(node.hash, node.url);
      for (const ref of referencedHashes(node.refs, node.hash)) {
        if (asked.has(ref)) continue;
        asked.add(ref);
        next.push(ref);
      }
    }
    frontier = next;
  }
  return closure;
}
