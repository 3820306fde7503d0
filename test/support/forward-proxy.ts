/**
 * A tiny forward proxy for tests, like a corporate one: absolute-form requests (`GET http://host/path`)
 * are relayed to their target, CONNECT opens a TCP tunnel. It records what it relayed, and can
 * require Proxy-Authorization. Only loopback targets are ever reached.
 *
 * ```ts
 * const proxy = await ForwardProxy.start();
 * // ... HTTP_PROXY=proxy.url
 * expect(proxy.relayed).toContainEqual(expect.objectContaining({ method: 'CONNECT', target: 'localhost:8443' }));
 * await proxy.stop();
 * ```
 */
import { once } from 'node:events';
import { IncomingHttpHeaders, IncomingMessage, Server, ServerResponse, createServer, request } from 'node:http';
import { AddressInfo, Socket, connect } from 'node:net';

export interface RelayedRequest {
  /** `GET` for an absolute-form request, `CONNECT` for a tunnel. */
  method: string;
  /** The absolute URL asked for, or `host:port` of a tunnel. */
  target: string;
  headers: IncomingHttpHeaders;
}

export class ForwardProxy {
  readonly relayed: RelayedRequest[] = [];
  /** TCP connections accepted from clients. */
  connections = 0;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    /** `Basic ...` that requests must carry as Proxy-Authorization (else 407); none: open. */
    private readonly authorization?: string,
  ) {}

  static async start(options: { authorization?: string } = {}): Promise<ForwardProxy> {
    const server = createServer();
    const proxy = new ForwardProxy(server, options.authorization);
    server.on('connection', (socket: Socket) => {
      proxy.connections++;
      proxy.sockets.add(socket);
      socket.once('close', () => proxy.sockets.delete(socket));
    });
    server.on('request', (req: IncomingMessage, res: ServerResponse) => proxy.relay(req, res));
    server.on('connect', (req: IncomingMessage, socket: Socket, head: Buffer) => proxy.tunnel(req, socket, head));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return proxy;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** `http://127.0.0.1:<port>`. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Requests relayed to `host:port` (absolute form or tunnel). */
  to(hostPort: string): RelayedRequest[] {
    return this.relayed.filter(({ method, target }) => (method === 'CONNECT' ? target : new URL(target).host) === hostPort);
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((done) => this.server.close(() => done()));
  }

  private allowed(req: IncomingMessage): boolean {
    return this.authorization === undefined || req.headers['proxy-authorization'] === this.authorization;
  }

  private relay(req: IncomingMessage, res: ServerResponse): void {
    const target = req.url ?? '';
    this.relayed.push({ method: req.method ?? 'GET', target, headers: req.headers });
    if (!this.allowed(req)) return void res.writeHead(407, { 'proxy-authenticate': 'Basic realm="test"' }).end();
    if (!/^http:\/\//.test(target)) return void res.writeHead(400).end('absolute-form http:// URL expected\n');
    const headers = { ...req.headers };
    delete headers['proxy-authorization'];
    delete headers['proxy-connection'];
    const upstream = request(target, { method: req.method, headers, agent: false }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => (res.headersSent ? res.destroy() : res.writeHead(502).end()));
    req.pipe(upstream);
  }

  private tunnel(req: IncomingMessage, client: Socket, head: Buffer): void {
    const target = req.url ?? '';
    this.relayed.push({ method: 'CONNECT', target, headers: req.headers });
    this.sockets.add(client);
    client.once('close', () => this.sockets.delete(client));
    if (!this.allowed(req)) return void client.end('HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n');
    const match = /^\[?([^\]]+?)\]?:(\d+)$/.exec(target);
    if (!match) return void client.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n');
    const server = connect(Number(match[2]), match[1]);
    this.sockets.add(server);
    server.once('close', () => this.sockets.delete(server));
    server.once('connect', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) server.write(head);
      server.pipe(client);
      client.pipe(server);
    });
    server.on('error', () => client.destroy());
    client.on('error', () => server.destroy());
  }
}
