import { once } from 'node:events';
import { AddressInfo, Server, Socket, connect, createServer } from 'node:net';

/**
 * A TCP proxy on 127.0.0.1 in front of a shared service (e.g. PostgreSQL on 5432), so that a test can
 * make the service unreachable for the app under test without stopping it for everybody else:
 * `cut()` drops every connection and refuses new ones; `restore()` listens again on the same port.
 */
export class TcpProxy {
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  private port = 0;

  private constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  static async start(targetHost: string, targetPort: number): Promise<TcpProxy> {
    const proxy = new TcpProxy(targetHost, targetPort);
    await proxy.restore();
    return proxy;
  }

  /** `127.0.0.1:<port>` of the proxy. */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  get listeningPort(): number {
    return this.port;
  }

  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  async restore(): Promise<void> {
    if (this.server) return;
    const server = createServer((client) => this.relay(client));
    server.listen(this.port, '127.0.0.1');
    await once(server, 'listening');
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  private relay(client: Socket): void {
    const upstream = connect(this.targetPort, this.targetHost);
    const both = [client, upstream];
    for (const socket of both) {
      this.sockets.add(socket);
      // Either side going away ends both: the other side sees its connection drop, as with a real outage.
      socket.on('close', () => {
        this.sockets.delete(socket);
        for (const other of both) other.destroy();
      });
      socket.on('error', () => socket.destroy());
    }
    client.pipe(upstream).pipe(client);
  }
}
