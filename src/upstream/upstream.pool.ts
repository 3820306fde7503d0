import { Agent as HttpAgent, ClientRequest, ClientRequestArgs, OutgoingHttpHeaders, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { isIP, Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { connect as tlsConnect, rootCertificates } from 'node:tls';
import { UpstreamUnavailableError } from './upstream.errors';
import { bare, ProxyServer } from 'src/net';
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
  /** Time to open a tunnel through a proxy: CONNECT answered and, for https, the TLS handshake done. */
  tunnelTimeoutMs: number;
}

/** How a request is sent: the function, its options (agent included), and the proxy it goes through if any. */
export interface Route {
  request: typeof httpRequest;
  options: { agent: HttpAgent; host: string; port: number; path: string; headers: OutgoingHttpHeaders; setHost: false };
  proxy?: ProxyServer;
}

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
  private readonly agents = new Map<string, HttpAgent>();
  private readonly slots = new Map<string, Slots>();
  private closed = false;

  constructor(private readonly options: UpstreamPoolOptions) {}

  /**
   * A connection slot of `url`'s origin and pool kind, to be released when the exchange is over
   * (response read or abandoned). Beyond max-connections, requests wait in order; with `waitMs`, a
   * request still waiting after it fails fast (UpstreamUnavailableError, `timeout`) rather than hang.
   * The slots, not the agent's maxSockets, enforce the cap: a tunnel being opened is not yet counted by the agent.
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

  /** `headers` are the request's own (Host is added here); `credentials`: whether they include Authorization for the upstream. */
  route(url: URL, kind: PoolKind, headers: OutgoingHttpHeaders, credentials: boolean): Route {
    const https = url.protocol === 'https:';
    const host = bare(url.hostname);
    const port = Number(url.port || (https ? 443 : 80));
    const path = `${url.pathname}${url.search}`;
    const withHost = { ...headers, host: url.host };
    const proxy = proxyFor(url, this.options.proxies);
    if (!proxy) {
      return {
        request: https ? httpsRequest : httpRequest,
        options: { agent: this.agent(url, kind, 'direct'), host, port, path, headers: withHost, setHost: false },
      };
    }
    if (!https && !credentials) {
      const proxied = proxy.authorization === undefined ? withHost : { ...withHost, 'proxy-authorization': proxy.authorization };
      const agent = this.agent(url, kind, 'forward');
      return {
        request: httpRequest,
        options: { agent, host: proxy.hostname, port: proxy.port, path: url.href, headers: proxied, setHost: false },
        proxy,
      };
    }
    return {
      request: httpRequest,
      options: { agent: this.agent(url, kind, 'tunnel', proxy), host, port, path, headers: withHost, setHost: false },
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
    for (const agent of this.agents.values()) agent.destroy();
    this.agents.clear();
  }

  private agent(url: URL, kind: PoolKind, mode: 'direct' | 'forward' | 'tunnel', proxy?: ProxyServer): HttpAgent {
    const key = `${url.origin} ${kind} ${mode}`;
    let agent = this.agents.get(key);
    if (agent === undefined) {
      const settings = { keepAlive: true, scheduling: 'lifo' as const, maxSockets: this.options.maxConnections(url.origin) };
      const https = url.protocol === 'https:';
      if (mode === 'tunnel') agent = new TunnelAgent(settings, proxy as ProxyServer, https, this.options);
      else if (mode === 'direct' && https) agent = new HttpsAgent({ ...settings, ca: this.trusted() });
      else agent = new HttpAgent(settings);
      this.agents.set(key, agent);
    }
    return agent;
  }

  private trusted(): (string | Buffer)[] | undefined {
    return this.options.ca && withRootCertificates(this.options.ca);
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

type CreateConnectionCallback = (error: Error | null, socket: Duplex) => void;

/**
 * Opens each connection as a tunnel through an HTTP proxy (CONNECT host:port), then, for https, a
 * TLS session with the upstream inside it. The tunnels are pooled and reused like plain connections.
 */
class TunnelAgent extends HttpAgent {
  constructor(
    settings: ConstructorParameters<typeof HttpAgent>[0],
    private readonly proxy: ProxyServer,
    private readonly tls: boolean,
    private readonly pool: Pick<UpstreamPoolOptions, 'ca' | 'tunnelTimeoutMs'>,
  ) {
    super(settings);
  }

  // Node's Agent calls this with the request options and a callback, and takes a socket handed to the callback later.
  override createConnection(options: ClientRequestArgs, callback?: CreateConnectionCallback): undefined {
    const host = options.host ?? 'localhost';
    const authority = `${isIP(host) === 6 ? `[${host}]` : host}:${options.port}`;
    const { proxy, pool } = this;
    let done = false;
    const finish = (error: Error | null, socket?: Socket): void => {
      clearTimeout(timer);
      if (done) {
        socket?.destroy();
        return;
      }
      done = true;
      // The agent takes the socket, or the error for the request waiting on it; an error comes without a socket.
      callback?.(error, socket as Socket);
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
      finish(new Error(`proxy ${proxy.label}: no tunnel to ${authority} within ${pool.tunnelTimeoutMs} ms`));
    }, pool.tunnelTimeoutMs);
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
      if (!this.tls) return finish(null, socket);
      const secure = tlsConnect({
        socket,
        host,
        // The upstream's name for SNI and the certificate check (an IP address is checked against the certificate's IP entries).
        servername: isIP(host) === 0 ? host : undefined,
        ca: pool.ca && withRootCertificates(pool.ca),
        ALPNProtocols: ['http/1.1'],
      });
      secure.once('secureConnect', () => finish(null, secure));
      secure.once('error', (error: Error) => {
        secure.destroy();
        finish(error);
      });
    });
    connect.end();
    return undefined;
  }
}
