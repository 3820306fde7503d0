/**
 * Lua scripts of the Redis read/write lock, run by Redlock on every server (quorum when several).
 * Every script gets the same keys:
 *   KEYS[1] the writer key `<prefix><key>`: a string holding the writer's random value, with a TTL
 *   KEYS[2] `<prefix><key>:readers`: sorted set of reader ids scored by their expiry (server ms), so each
 *           reader is tracked on its own and a reader whose instance died drops out when its score passes
 *   KEYS[3] `<prefix><key>:writer-waiting`: set while a writer waits; new readers hold back, so a stream of
 *           overlapping readers cannot starve writers
 * and ARGV[1] = the holder's random value (writer value or reader id), ARGV[2] = TTL in ms.
 * Redlock counts a server's vote as "for" when a script returns #KEYS, so every success returns #KEYS
 * (release always succeeds: afterwards the caller holds nothing, whatever it held before).
 * A release publishes the writer key on the release channel, which wakes the waiters of every instance.
 */
export interface RedisLockScripts {
  readonly acquireScript: string;
  readonly extendScript: string;
  readonly releaseScript: string;
}

// Server time, not the caller's clock: reader expiry must mean the same thing for every instance.
const NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

const DROP_EXPIRED_READERS = `redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)`;

// Keeps the readers set alive as long as its longest-lived reader.
const KEEP_READERS = `
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
`;

/** Exclusive lock. `announce`: a waiting writer marks itself for `announceTtlMs` when it has to wait. */
export function writerScripts(channel: string, announce: boolean, announceTtlMs: number): RedisLockScripts {
  const onBusy = announce ? `redis.call('SET', KEYS[3], '1', 'PX', ${Math.ceil(announceTtlMs)})` : '';
  return {
    acquireScript: `${NOW}
${DROP_EXPIRED_READERS}
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('ZCARD', KEYS[2]) > 0 then
  ${onBusy}
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('DEL', KEYS[3])
return #KEYS`,
    extendScript: `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return #KEYS`,
    releaseScript: `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ${luaString(channel)}, KEYS[1])
end
return #KEYS`,
  };
}

/** Shared lock: refused while a writer holds the key or waits for it. */
export function readerScripts(channel: string): RedisLockScripts {
  return {
    acquireScript: `${NOW}
${DROP_EXPIRED_READERS}
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[1])
${KEEP_READERS}
return #KEYS`,
    extendScript: `${NOW}
local expiry = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not expiry or tonumber(expiry) < now then return 0 end
redis.call('ZADD', KEYS[2], 'XX', now + tonumber(ARGV[2]), ARGV[1])
${KEEP_READERS}
return #KEYS`,
    // Only the last reader out wakes the waiters: writers are the only ones waiting for readers.
    releaseScript: `${NOW}
if redis.call('ZREM', KEYS[2], ARGV[1]) == 1 then
  ${DROP_EXPIRED_READERS}
  if redis.call('ZCARD', KEYS[2]) == 0 then redis.call('PUBLISH', ${luaString(channel)}, KEYS[1]) end
end
return #KEYS`,
  };
}

/** A Lua string literal of any value (the prefix is configurable): bytes outside plain ASCII as `\ddd`. */
function luaString(value: string): string {
  let literal = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    const plain = byte >= 0x20 && byte < 0x7f && byte !== 0x22 && byte !== 0x5c;
    literal += plain ? String.fromCharCode(byte) : `\\${byte.toString().padStart(3, '0')}`;
  }
  return `"${literal}"`;
}
