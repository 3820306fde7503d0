import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { createServer, Server } from 'node:https';
import { AddressInfo } from 'node:net';
import { TestPki } from './redis-tls';

/**
 * An https upstream on 127.0.0.1 with the certificate of a test PKI (see createTestPki): serves
 * `files` by path (and a minimal nix-cache-info), records the headers of what it got.
 */
export class TlsUpstream {
  readonly requests: IncomingHttpHeaders[] = [];

  private constructor(
    private readonly server: Server,
    readonly files: Map<string, string | Buffer>,
  ) {}

  static async start(pki: TestPki, files = new Map<string, string | Buffer>()): Promise<TlsUpstream> {
    const server = createServer({ cert: readFileSync(pki.certFile), key: readFileSync(pki.keyFile) });
    const upstream = new TlsUpstream(server, files);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      upstream.requests.push(req.headers);
      const body = req.url === '/nix-cache-info' ? 'StoreDir: /nix/store\n' : files.get(req.url ?? '');
      if (body === undefined) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-length': Buffer.byteLength(body) }).end(body);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return upstream;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((done) => this.server.close(done));
  }
}
