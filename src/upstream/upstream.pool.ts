import { ClientRequest, OutgoingHttpHeaders, request as httpRequest } from 'node:http';
import { isIP, Socket } from 'node:net';
import { connect as tlsConnect, rootCertificates } from 'node:tls';
import type { buildConnector, Dispatcher } from 'undici';
// undici's own entry point loads all of it (fetch, WebSocket, caches...): ~8 MiB more RSS for nothing used here.
// eslint-disable-next-line @typescript-eslint/no-require-imports -- the one class used, from its own file
const Client = require('undici/lib/dispatcher/client.js') as typeof import('undici').Client;
type Client = InstanceType<typeof Client>;
import { UpstreamUnavailableError } from './upstream.errors';
import { ProxyServer } from 'src/net';
import { ProxySettings, proxyFor } from './upstream.proxy';

/**
 * Which connections a request uses. Small documents (narinfo, nix-cache-info) and streamed bodies
 * (NARs, artifacts) have separate pools per origin, each capped at the origin's max-connections:
 * a NAR download holds its connection for as long as it runs, and narinfo lookups must never queue
 * behind a pool full of them (a lookup waits at most its dial timeout for a connection).
 */
export type PoolKind = 'document' | 'stream';

export interface UpstreamPoolOptions {
  proxies: ProxySettings;
  /** Extra CAs (PEM) trusted for https upstreams besides the bundled ones (`--cache-upstream-ca-file`). */
  ca?: Buffer[];
  /** Most connections per pool to an origin (`scheme://host[:port]`). */
  maxConnections: (origin: string) => number;
  /** Time to open a direct connection (TCP, and for https the TLS handshake). */
  dialTimeoutMs: number;
  /** Time to open a tunnel through a proxy: CONNECT answered and, for https, the TLS handshake done. */
  tunnelTimeoutMs: number;
}

/** How a request is sent: the connections it goes through, what is sent, and the proxy on the way if any. */
export interface Route {
  dispatcher: Dispatcher;
  request: Dispatcher.DispatchOptions;
  proxy?: ProxyServer;
}

/**
 * How long an idle connection is kept, unless the upstream's Keep-Alive header says less (undici
 * then closes it a moment before the upstream would, rather than racing it).
 */
const KEEP_ALIVE_MS = 30_000;

/**
 * Keep-alive connection pools per upstream origin and pool kind, direct or through a forward proxy:
 * - direct: http or https as usual;
 * - http through a proxy: the request in absolute form to the proxy (with its Proxy-Authorization),
 *   unless it carries the upstream's credentials, which then go through a CONNECT tunnel so that the
 *   proxy never receives them as a header;
 * - https through a proxy: a CONNECT tunnel, then TLS end to end with the upstream, its certificate
 *   verified against the upstream's host name (the proxy sees only encrypted bytes).
 */
export class UpstreamPools {
  private readonly clients = new Map<string, Client[]>();
  private readonly slots = new Map<string, Slots>();
  private closed = false;

  constructor(private readonly options: UpstreamPoolOptions) {}

  /**
   * A connection slot of `url`'s origin and pool kind, to be released when the exchange is over
   * (response read or abandoned). Beyond max-connections, requests wait in order; with `waitMs`, a
   * request still waiting after it fails fast (UpstreamUnavailableError, `timeout`) rather than hang.
   * The slots enforce the cap and keep the order of the waiting requests.
   */
  acquire(url: URL, kind: PoolKind, label: string, waitMs?: number): Promise<() => void> {
    if (this.closed) return Promise.reject(new UpstreamUnavailableError(`upstream ${label}: shutting down`, 'network'));
    const key = `${url.origin} ${kind}`;
    let slots = this.slots.get(key);
    if (!slots) {
      slots = { active: 0, max: this.options.maxConnections(url.origin), waiting: [] };
      this.slots.set(key, slots);
    }
    const entry = slots;
    const release = once(() => {
      entry.active--;
      const next = entry.waiting.shift();
      if (next) next.grant();
    });
    if (entry.active < entry.max) {
      entry.active++;
      return Promise.resolve(release);
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        grant: () => {
          clearTimeout(timer);
          entry.active++;
          resolve(release);
        },
        fail: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      const timer =
        waitMs === undefined
          ? undefined
          : setTimeout(() => {
              entry.waiting.splice(entry.waiting.indexOf(waiter), 1);
              reject(new UpstreamUnavailableError(`upstream ${label}: all ${entry.max} connections busy for ${waitMs} ms`, 'timeout'));
            }, waitMs);
      entry.waiting.push(waiter);
    });
  }

  /**
   * Where an exchange for `url` goes, and what is sent: `headers` are the request's own;
   * `credentials` says whether they include Authorization for the upstream.
   */
  route(url: URL, kind: PoolKind, headers: Record<string, string>, credentials: boolean): Route {
    const path = `${url.pathname}${url.search}`;
    const proxy = proxyFor(url, this.options.proxies);
    if (!proxy) return { dispatcher: this.connection(url, kind, 'direct'), request: { origin: url.origin, path, method: 'GET', headers } };
    if (url.protocol === 'http:' && !credentials) {
      // To the proxy, in absolute form, with the proxy's own credentials and the upstream's Host.
      const proxied: Record<string, string> = { ...headers, host: url.host };
      if (proxy.authorization !== undefined) proxied['proxy-authorization'] = proxy.authorization;
      const request = { origin: proxyOrigin(proxy), path: url.href, method: 'GET' as const, headers: proxied };
      return { dispatcher: this.connection(url, kind, 'forward', proxy), request, proxy };
    }
    return {
      dispatcher: this.connection(url, kind, 'tunnel', proxy),
      request: { origin: url.origin, path, method: 'GET', headers },
      proxy,
    };
  }

  /** Closes idle connections and fails requests still running. */
  destroy(): void {
    this.closed = true;
    for (const slots of this.slots.values()) {
      for (const waiter of slots.waiting.splice(0))
        waiter.fail(new UpstreamUnavailableError('upstream requests: shutting down', 'network'));
    }
    for (const client of [...this.clients.values()].flat()) void client.destroy().catch(() => undefined);
    this.clients.clear();
  }

  /**
   * A keep-alive connection of one origin and pool kind, opened directly, to the proxy, or as a
   * tunnel through it: an idle one first (undici sends on it once it has taken the previous answer
   * in), then a new one, up to max-connections. The slots above keep exchanges within that number.
   */
  private connection(url: URL, kind: PoolKind, mode: 'direct' | 'forward' | 'tunnel', proxy?: ProxyServer): Client {
    const key = `${url.origin} ${kind} ${mode}`;
    let clients = this.clients.get(key);
    if (clients === undefined) {
      clients = [];
      this.clients.set(key, clients);
    }
    const idle =
      clients.find((client) => client.stats.size === 0 && client.stats.connected) ?? clients.find((client) => client.stats.size === 0);
    if (idle) return idle;
    if (clients.length < this.options.maxConnections(url.origin)) {
      const client = this.open(url, mode, proxy);
      clients.push(client);
      return client;
    }
    return clients.reduce((least, client) => (client.stats.size < least.stats.size ? client : least));
  }

  private open(url: URL, mode: 'direct' | 'forward' | 'tunnel', proxy?: ProxyServer): Client {
    const { dialTimeoutMs, tunnelTimeoutMs } = this.options;
    const ca = this.options.ca && withRootCertificates(this.options.ca);
    const settings = { keepAliveTimeout: KEEP_ALIVE_MS };
    if (mode === 'direct') return new Client(url.origin, { ...settings, connect: { timeout: dialTimeoutMs, ca } });
    if (mode === 'forward') return new Client(proxyOrigin(proxy as ProxyServer), { ...settings, connect: { timeout: tunnelTimeoutMs } });
    return new Client(url.origin, { ...settings, connect: tunnelConnector(proxy as ProxyServer, tunnelTimeoutMs, ca) });
  }
}

/** Node's bundled CAs: giving `ca` to TLS replaces them, so extra CAs are added to these. */
function withRootCertificates(ca: Buffer[]): (string | Buffer)[] {
  return [...rootCertificates, ...ca];
}

interface Waiter {
  grant(): void;
  fail(error: Error): void;
}

interface Slots {
  active: number;
  max: number;
  waiting: Waiter[];
}

function once(fn: () => void): () => void {
  let called = false;
  return () => {
    if (called) return;
    called = true;
    fn();
  };
}

function proxyOrigin(proxy: ProxyServer): string {
  return `http://${isIP(proxy.hostname) === 6 ? `[${proxy.hostname}]` : proxy.hostname}:${proxy.port}`;
}

/**
 * Opens each connection as a tunnel through an HTTP proxy (CONNECT host:port) within `timeoutMs`,
 * then, for https, a TLS session with the upstream inside it. The pool reuses tunnels like plain connections.
 */
function tunnelConnector(proxy: ProxyServer, timeoutMs: number, ca: (string | Buffer)[] | undefined): buildConnector.connector {
  return (options, callback) => {
    const host = options.hostname;
    const port = options.port || (options.protocol === 'https:' ? '443' : '80');
    const authority = `${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
    let done = false;
    const finish = (error: Error | null, socket?: Socket): void => {
      clearTimeout(timer);
      if (done) {
        socket?.destroy();
        return;
      }
      done = true;
      if (error) callback(error, null);
      else callback(null, socket as Socket);
    };
    const headers: OutgoingHttpHeaders = { host: authority };
    if (proxy.authorization !== undefined) headers['proxy-authorization'] = proxy.authorization;
    const connect: ClientRequest = httpRequest({
      host: proxy.hostname,
      port: proxy.port,
      method: 'CONNECT',
      path: authority,
      headers,
      agent: false,
      setHost: false,
    });
    const timer = setTimeout(() => {
      connect.destroy();
      finish(new Error(`proxy ${proxy.label}: no tunnel to ${authority} within ${timeoutMs} ms`));
    }, timeoutMs);
    // The system code (ECONNREFUSED, ECONNRESET...) is kept: it decides whether the request is retried.
    connect.once('error', (error: NodeJS.ErrnoException) =>
      finish(Object.assign(new Error(`proxy ${proxy.label}: ${error.message}`), { code: error.code })),
    );
    // Node hands every answer to a CONNECT here, refusals (403, 407, 502...) included.
    connect.once('connect', (res, socket: Socket, head: Buffer) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        return finish(new Error(`proxy ${proxy.label} refused a tunnel to ${authority}: HTTP ${res.statusCode}`));
      }
      if (head.length > 0) socket.unshift(head);
      if (options.protocol !== 'https:') return finish(null, socket);
      const secure = tlsConnect({
        socket,
        host,
        // The upstream's name for SNI and the certificate check (an IP address is checked against the certificate's IP entries).
        servername: isIP(host) === 0 ? host : undefined,
        ca,
        ALPNProtocols: ['http/1.1'],
      });
      secure.once('secureConnect', () => finish(null, secure));
      secure.once('error', (error: Error) => {
        secure.destroy();
        finish(error);
      });
    });
    connect.end();
  };
}
