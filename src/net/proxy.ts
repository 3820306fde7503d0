import { BlockList, isIP } from 'node:net';
import { urlAuthorization } from './url-credentials';

/**
 * The forward proxy options, parsed: `HTTP_PROXY` / `HTTPS_PROXY` values (parseProxyUrl) and the
 * `NO_PROXY` list (NoProxy). The values come from the configuration (flags, YAML or those environment
 * variables, read in src/config), never from the environment here; which proxy a request takes is
 * decided in src/upstream.
 */

/** A parsed proxy URL: where to connect, and its own credentials (sent to it only, as Proxy-Authorization). */
export interface ProxyServer {
  /** Host name or IP address, IPv6 without brackets. */
  hostname: string;
  port: number;
  /** `host:port`, for messages: never the credentials. */
  label: string;
  authorization?: string;
}

/**
 * `http://[user:pass@]host[:port]`, or `host[:port]` (taken as http://, as curl and Go do); the port
 * defaults to 80. Only plain-HTTP proxies are supported: https:// and socks proxies are refused.
 * Errors never quote the value, which may carry credentials.
 */
export function parseProxyUrl(text: string): ProxyServer {
  const trimmed = text.trim();
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed) ? trimmed : `http://${trimmed}`;
  const url = URL.canParse(withScheme) ? new URL(withScheme) : null;
  if (!url || url.hostname === '') throw new Error('a proxy must be a URL such as http://proxy.example:3128');
  if (url.protocol !== 'http:') {
    throw new Error(
      `${url.protocol.slice(0, -1)} proxies are not supported: give an http:// proxy (https upstreams go through it by CONNECT)`,
    );
  }
  if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '') {
    throw new Error(`proxy ${url.host}: leave out the path and query (http://host:port)`);
  }
  const proxy: ProxyServer = { hostname: bare(url.hostname), port: Number(url.port || 80), label: url.host };
  const authorization = urlAuthorization(url);
  if (authorization) proxy.authorization = authorization;
  return proxy;
}

/** One `NO_PROXY` entry. */
type NoProxyRule =
  | { kind: 'all' }
  | { kind: 'name'; name: string; port?: number }
  | { kind: 'address'; address: string; port?: number }
  | { kind: 'range'; list: BlockList };

/**
 * Which hosts bypass the proxy, with curl's `NO_PROXY` semantics: a comma (or space) separated list;
 * `*` matches every host; a name matches itself and its subdomains (`example.com` and `.example.com`
 * both match `example.com` and `cache.example.com`, `*.example.com` is read the same way); an IP
 * address matches that address only, an IP range in CIDR notation (`10.0.0.0/8`, `fd00::/8`) the
 * addresses in it; `:port` after a name or an address (`[::1]:8080` for IPv6) limits the entry to
 * that port. Names are compared case-insensitively; nothing is resolved through DNS.
 */
export class NoProxy {
  private readonly rules: NoProxyRule[];

  /** Throws an Error naming a bad entry (checked when the configuration is built). */
  constructor(entries: readonly string[]) {
    this.rules = entries
      .flatMap((entry) => entry.split(/[\s,]+/))
      .filter((entry) => entry !== '')
      .map(parseRule);
  }

  /** Does a request to `url` go directly, not through the proxy? */
  bypasses(url: URL): boolean {
    const host = bare(url.hostname).toLowerCase().replace(/\.$/, '');
    const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
    const version = isIP(host);
    return this.rules.some((rule) => {
      switch (rule.kind) {
        case 'all':
          return true;
        case 'range':
          return version !== 0 && rule.list.check(host, version === 4 ? 'ipv4' : 'ipv6');
        case 'address':
          return version !== 0 && sameAddress(rule.address, host) && (rule.port === undefined || rule.port === port);
        case 'name':
          // Suffixes are for names: `0.0.1` must not match the address 127.0.0.1.
          return version === 0 && (host === rule.name || host.endsWith(`.${rule.name}`)) && (rule.port === undefined || rule.port === port);
      }
    });
  }
}

function parseRule(entry: string): NoProxyRule {
  const text = entry.toLowerCase();
  if (text === '*') return { kind: 'all' };
  if (text.includes('/')) {
    const [address, prefixText] = text.split('/', 2);
    const version = isIP(address);
    const prefix = /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
    if (version === 0 || !(prefix <= (version === 4 ? 32 : 128)))
      throw new Error(`"${entry}" is not a host, an IP address or a CIDR range`);
    const list = new BlockList();
    list.addSubnet(address, prefix, version === 4 ? 'ipv4' : 'ipv6');
    return { kind: 'range', list };
  }
  if (isIP(text) === 6) return { kind: 'address', address: text };
  const bracketed = /^\[([0-9a-f:.]+)\](?::(\d{1,5}))?$/.exec(text);
  if (bracketed) return withPort({ kind: 'address', address: bracketed[1] }, bracketed[2], entry);
  const [host, portText, ...rest] = text.split(':');
  if (rest.length > 0) throw new Error(`"${entry}" is not a host, an IP address or a CIDR range`);
  const name = host.replace(/^\*?\.+/, '').replace(/\.$/, '');
  if (name === '') throw new Error(`"${entry}" names no host`);
  if (isIP(name) === 4) return withPort({ kind: 'address', address: name }, portText, entry);
  return withPort({ kind: 'name', name }, portText, entry);
}

function withPort<R extends NoProxyRule & { port?: number }>(rule: R, portText: string | undefined, entry: string): R {
  if (portText === undefined) return rule;
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (!(port >= 1 && port <= 65535)) throw new Error(`"${entry}" has an invalid port`);
  return { ...rule, port };
}

/** Equal addresses, however an IPv6 address is written (`::1` and `0:0:0:0:0:0:0:1`). */
function sameAddress(a: string, b: string): boolean {
  if (a === b) return true;
  const version = isIP(a);
  if (version !== isIP(b) || version !== 6) return false;
  const list = new BlockList();
  list.addAddress(a, 'ipv6');
  return list.check(b, 'ipv6');
}

/** A URL's hostname without the brackets of an IPv6 literal. */
export function bare(hostname: string): string {
  return hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
}
