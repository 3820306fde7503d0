import { once } from 'node:events';
import { Agent, IncomingMessage, Server, createServer, request } from 'node:http';

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
    const server = createServer();
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
    const upstream = request(
      { host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers, agent: this.agent },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
        answer.on('error', () => res.destroy());
      },
    );
    upstream.on('error', () => {
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
