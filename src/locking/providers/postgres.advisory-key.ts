import { createHash } from 'node:crypto';

/**
 * The advisory lock id of a key: the first 8 bytes of sha256(prefix + key) as a signed int64, in
 * decimal (what `$1::bigint` takes). The prefix keeps deployments that share a database apart.
 */
export function advisoryKey(prefix: string, key: string): string {
  return createHash('sha256')
    .update(prefix + key)
    .digest()
    .readBigInt64BE(0)
    .toString();
}

/** Which of `count` lock sessions holds the locks of this id: always the same one for a key. */
export function sessionIndex(id: string, count: number): number {
  return Number(BigInt.asUintN(64, BigInt(id)) % BigInt(count));
}
