/**
 * `host`, `host:port`, `[v6]` or `[v6]:port`, as the database URLs, --server-addr and --cache-redis-addrs
 * take them. The port (when given) must be 1-65535, or 0-65535 with `allowZero` (a listener's "any free
 * port"); the host is not checked beyond its shape and may be empty (":8501").
 */
export function splitHostPort(authority: string, { allowZero = false } = {}): { host: string; port?: number } {
  const match = /^(?:\[([^\]]*)\]|([^:[\]]*))(?::(\d*))?$/.exec(authority.trim());
  if (!match) throw new Error('expected host, host:port or [v6]:port');
  return { host: match[1] ?? match[2], port: match[3] === undefined ? undefined : parsePort(match[3], allowZero) };
}

export function parsePort(text: string, allowZero = false): number {
  const port = Number(text);
  if (!/^\d{1,5}$/.test(text) || port < (allowZero ? 0 : 1) || port > 65535) throw new Error(`port must be ${allowZero ? 0 : 1}-65535`);
  return port;
}
