/**
 * Where a lock lives in Redis. Every lock has three keys (see redis.scripts.ts): the writer key, its
 * `:readers` set and its `:writer-waiting` mark, all touched by one script.
 *
 * - One server, or independent servers voting (quorum): the documented layout, `<prefix>download:nar:<hash>`.
 * - Redis Cluster: a script's keys must live in one hash slot, so the lock's name is a hash tag,
 *   `<prefix>{download:nar:<hash>}` (+ `:readers`, `:writer-waiting`): the three keys of a lock share a
 *   slot, and different locks spread over the cluster.
 */
export interface RedisKeyLayout {
  /** The writer key of lock `key` (also the payload of its release notification). */
  lockKey(key: string): string;
  /** The keys every script of lock `key` receives, in KEYS order. */
  resources(key: string): [string, string, string];
  /** The lock name of a released writer key, or undefined when the key is not one of ours. */
  lockName(redisKey: string): string | undefined;
}

export function redisKeyLayout(prefix: string, hashTagged: boolean): RedisKeyLayout {
  const lockKey = (key: string): string => (hashTagged ? `${prefix}{${key}}` : `${prefix}${key}`);
  return {
    lockKey,
    resources: (key) => {
      const writer = lockKey(key);
      return [writer, `${writer}:readers`, `${writer}:writer-waiting`];
    },
    lockName: (redisKey) => {
      if (!redisKey.startsWith(prefix)) return undefined;
      const rest = redisKey.slice(prefix.length);
      if (!hashTagged) return rest;
      return rest.startsWith('{') && rest.endsWith('}') ? rest.slice(1, -1) : undefined;
    },
  };
}

/** The hash slot of a key (CRC16/XMODEM of its hash tag, mod 16384), as Redis Cluster computes it. */
export function hashSlot(key: string): number {
  const open = key.indexOf('{');
  if (open >= 0) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) key = key.slice(open + 1, close);
  }
  let crc = 0;
  for (const byte of Buffer.from(key, 'utf8')) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16384;
}
