/**
 * The statement size budget: MySQL refuses packets above max_allowed_packet (4 MiB by default on
 * MySQL 5.7, 16 MiB on MariaDB 10.11, 64 MiB on MySQL 8), and a narinfo's References can be large.
 */
export const MAX_STATEMENT_BYTES = 2 * 1024 * 1024;

/**
 * Splits `items` into consecutive batches of at most `maxItems` items and about `maxBytes` bytes
 * (an item bigger than `maxBytes` goes alone into its own batch).
 */
export function batches<T>(items: readonly T[], maxItems: number, maxBytes = Infinity, sizeOf: (item: T) => number = () => 0): T[][] {
  const result: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const size = sizeOf(item);
    if (current.length > 0 && (current.length >= maxItems || bytes + size > maxBytes)) {
      result.push(current);
      current = [];
      bytes = 0;
    }
    current.push(item);
    bytes += size;
  }
  if (current.length > 0) result.push(current);
  return result;
}

/** Rough byte size of a row's values as sent to the server (strings dominate). */
export function approximateSize(values: readonly unknown[]): number {
  return values.reduce<number>((sum, v) => sum + (typeof v === 'string' ? Buffer.byteLength(v) : 8) + 4, 0);
}
