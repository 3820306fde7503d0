import { once } from 'node:events';
import { Agent, IncomingHttpHeaders, IncomingMessage, Server, createServer, request } from 'node:http';

/**
 * A minimal round-robin HTTP load balancer for HA tests. Like nginx's `proxy_next_upstream error`,
 * a request that fails before any response header arrives (connection refused or reset: an instance
 * restarting) is retried on the next instance.
 */
export class LoadBalancer {
  private next = 0;
  private readonly agent = new Agent({ keepAlive: true });
  retries = 0;

  private constructor(
    private readonly server: Server,
    private readonly backends: () => string[],
  ) {}

  static async start(backends: () => string[]): Promise<LoadBalancer> {
    // Clients keep connections to the balancer open between requests; never close them first.
    const server = createServer({ keepAliveTimeout: 120_000 });
    const lb = new LoadBalancer(server, backends);
    server.on('request', (req, res) => lb.forward(req, res));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return lb;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
  }

  async stop(): Promise<void> {
    this.agent.destroy();
    this.server.closeAllConnections();
    this.server.close();
  }

  private forward(req: IncomingMessage, res: import('node:http').ServerResponse, attempt = 0): void {
    const targets = this.backends();
    const target = new URL(targets[this.next++ % targets.length]);
    let answered: IncomingMessage | undefined;
    const upstream = request(
      { host: target.hostname, port: target.port, path: req.url, method: req.method, headers: endToEnd(req.headers), agent: this.agent },
      (answer) => {
        answered = answer;
        res.writeHead(answer.statusCode ?? 502, endToEnd(answer.headers));
        answer.pipe(res);
        answer.on('error', () => res.destroy());
      },
    );
    upstream.on('error', () => {
      // Node reports a reset that follows a complete response as an error of the request; the
      // response is whole (its body is still being piped), so it stands, as it would in nginx.
      if (answered?.complete) return;
      if (res.headersSent) return res.destroy();
      if (attempt < targets.length * 3) {
        this.retries += 1;
        setTimeout(() => this.forward(req, res, attempt + 1), 20);
      } else {
        res.writeHead(502).end('no instance answered\n');
      }
    });
    upstream.end();
  }
}

/**
 * Drops hop-by-hop headers (RFC 9110 §7.6.1), as a proxy must: forwarding an instance's
 * `Keep-Alive: timeout=72` would tell clients that the balancer's own connections live that long.
 */
function endToEnd(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const hopByHop = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer']);
  for (const named of String(headers.connection ?? '').split(',')) hopByHop.add(named.trim().toLowerCase());
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !hopByHop.has(name.toLowerCase())));
}
