/**
 * A local upstream binary cache for tests: an HTTP server on 127.0.0.1 (random port) that serves a
 * directory written by `nix copy --to file://DIR`, programmable routes, or both, and can misbehave
 * on request. Nothing here reaches the network.
 *
 * ```ts
 * const upstream = await FakeUpstream.start({ dir: cacheDir });      // serves DIR/<path>
 * upstream.serve('/abc.narinfo', text);                              // or in-memory files
 * upstream.route('/nar/x.nar.xz', { cutAfterBytes: 100 });           // DIR's file, cut after 100 bytes
 * upstream.route('/slow.narinfo', { delayMs: 2000 });                // headers after 2 s
 * upstream.route('/nix-cache-info', { status: 503 });                // status override
 * await fetch(`${upstream.url}/abc.narinfo`);
 * expect(upstream.count('/abc.narinfo')).toBe(1);                    // requests per path
 * await upstream.stop();  await upstream.restart();                  // down, then up on the same port
 * ```
 *
 * Paths are URL paths as requested, without the query string: `/nar/x.nar?hash=abc` is served from
 * (and counted as) `/nar/x.nar`. Files come from `dir` (never outside it); `/nix-cache-info` falls
 * back to `options.cacheInfo`. A path with neither a route body nor a file answers 404.
 * Misbehaviours (see RouteBehaviour) apply to a route's body or to the file behind it.
 */
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { IncomingHttpHeaders, IncomingMessage, Server, ServerResponse, createServer } from 'node:http';
import { AddressInfo, Socket, connect } from 'node:net';
import { join, resolve, sep } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';

export interface RouteBehaviour {
  /** Status to answer; default 200 when there is a body (route or file), else 404. */
  status?: number;
  /** The body; default: the file at this path in `dir`. */
  body?: string | Buffer;
  /** Extra or overriding response headers (e.g. `{ location: '...' }` with a 302). */
  headers?: Record<string, string>;
  /** Waits before sending headers; `Infinity` never answers (the connection stays open until stop()). */
  delayMs?: number;
  /** Waits for this promise before sending headers: holds requests until the test releases them. */
  waitFor?: Promise<unknown>;
  /** Sends only the first N body bytes (Content-Length still announces them all), then drops the connection. */
  cutAfterBytes?: number;
  /** Sends the first N body bytes, then nothing more, keeping the connection open until stop(). */
  stallAfterBytes?: number;
  /** Sends the body slowly: `chunkSize` bytes every `intervalMs`. */
  throttle?: { chunkSize: number; intervalMs: number };
  /** Flips the bits of one body byte: at this offset, or in the middle when `true`. Length unchanged. */
  tamper?: boolean | number;
  /** Leaves out Content-Length (chunked transfer encoding); a cut then lacks the final chunk. */
  chunked?: boolean;
}

/** Full control: answer as you like. */
export type RouteHandler = (req: IncomingMessage, res: ServerResponse) => unknown;

export interface RecordedRequest {
  method: string;
  /** Path and query string, as requested. */
  url: string;
  headers: IncomingHttpHeaders;
}

export interface FakeUpstreamOptions {
  /** A directory written by `nix copy --to file://DIR`, served by path. */
  dir?: string;
  /** `/nix-cache-info` when neither a route nor `dir` provides one; null answers 404. */
  cacheInfo?: string | null;
  /** Address to listen on: default 127.0.0.1; `::1` for an IPv6 upstream. */
  host?: string;
}

export const DEFAULT_CACHE_INFO = 'StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n';

const CONTENT_TYPES: [RegExp, string][] = [
  [/\/nix-cache-info$/, 'text/x-nix-cache-info'],
  [/\.narinfo$/, 'text/x-nix-narinfo'],
  [/\.nar(\.[a-z0-9]+)?$/, 'application/x-nix-nar'],
];

export class FakeUpstream {
  private readonly routes = new Map<string, RouteBehaviour | RouteHandler>();
  private readonly counts = new Map<string, number>();
  private readonly recorded: RecordedRequest[] = [];
  private server?: Server;

  /** 0 until the first listen; then kept across stop() and restart(). */
  private listeningPort = 0;

  private constructor(private readonly options: FakeUpstreamOptions) {}

  static async start(options: FakeUpstreamOptions = {}): Promise<FakeUpstream> {
    const upstream = new FakeUpstream(options);
    await upstream.restart();
    return upstream;
  }

  get port(): number {
    return this.listeningPort;
  }

  /** `http://127.0.0.1:<port>` (`http://[::1]:<port>` on IPv6), without a trailing slash. */
  get url(): string {
    const host = this.options.host ?? '127.0.0.1';
    return `http://${host.includes(':') ? `[${host}]` : host}:${this.port}`;
  }

  /** Defines (or replaces) what `path` answers. */
  route(path: string, behaviour: RouteBehaviour | RouteHandler): this {
    this.routes.set(path, behaviour);
    return this;
  }

  /** Serves `body` at `path` with status 200: an in-memory file. */
  serve(path: string, body: string | Buffer, headers?: Record<string, string>): this {
    return this.route(path, { body, headers });
  }

  /** Back to serving `dir` (or 404) at `path`. */
  unroute(path: string): this {
    this.routes.delete(path);
    return this;
  }

  /** Requests received for `path` (query string ignored) since the start or resetCounts(). */
  count(path: string): number {
    return this.counts.get(path) ?? 0;
  }

  /** Every request received, oldest first (headers included: e.g. to check Authorization). */
  get requests(): readonly RecordedRequest[] {
    return this.recorded;
  }

  resetCounts(): void {
    this.counts.clear();
    this.recorded.length = 0;
  }

  /** Stops listening and drops every connection, stalled ones included: clients then see refusals. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((done) => server.close(() => done()));
  }

  /** Listens again after stop(), on the same port, with the same routes and counts. */
  async restart(): Promise<void> {
    if (!this.server) this.server = await this.listen(this.port);
  }

  private async listen(port: number): Promise<Server> {
    const server = createServer((req, res) => void this.handle(req, res));
    server.listen(port, this.options.host ?? '127.0.0.1');
    await once(server, 'listening');
    this.listeningPort = (server.address() as AddressInfo).port;
    return server;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    const path = url.split('?')[0];
    this.recorded.push({ method: req.method ?? 'GET', url, headers: req.headers });
    this.counts.set(path, this.count(path) + 1);
    try {
      const route = this.routes.get(path);
      if (typeof route === 'function') await route(req, res);
      else await this.answer(req, res, path, route ?? {});
    } catch (error) {
      if (!res.headersSent) res.writeHead(500).end(String(error));
      else res.destroy();
    }
  }

  private async answer(req: IncomingMessage, res: ServerResponse, path: string, behaviour: RouteBehaviour): Promise<void> {
    let body = behaviour.body === undefined ? await this.file(path) : Buffer.from(behaviour.body);
    const status = behaviour.status ?? (body ? 200 : 404);
    body ??= Buffer.from(status === 404 ? 'not found\n' : '');
    if (behaviour.waitFor) await behaviour.waitFor;
    if (behaviour.delayMs === Infinity) return; // never answers; stop() drops the connection
    if (behaviour.delayMs) await sleep(behaviour.delayMs, undefined, { ref: false });
    if (behaviour.tamper !== undefined && behaviour.tamper !== false && body.length > 0) {
      body = Buffer.from(body);
      const at = behaviour.tamper === true ? Math.floor(body.length / 2) : behaviour.tamper;
      body[at] ^= 0xff;
    }

    const headers: Record<string, string | number> = {};
    const type = CONTENT_TYPES.find(([pattern]) => pattern.test(path));
    if (type) headers['content-type'] = type[1];
    if (!behaviour.chunked) headers['content-length'] = body.length;
    Object.assign(headers, behaviour.headers);
    res.writeHead(status, headers);
    if (req.method === 'HEAD') return void res.end();

    const limit = Math.min(body.length, behaviour.cutAfterBytes ?? behaviour.stallAfterBytes ?? body.length);
    const chunkSize = behaviour.throttle?.chunkSize ?? Math.max(limit, 1);
    for (let offset = 0; offset < limit; offset += chunkSize) {
      if (offset > 0 && behaviour.throttle) await sleep(behaviour.throttle.intervalMs, undefined, { ref: false });
      if (res.destroyed) return;
      await write(res, body.subarray(offset, Math.min(offset + chunkSize, limit)));
    }
    if (behaviour.cutAfterBytes !== undefined) return void res.socket?.destroy();
    if (behaviour.stallAfterBytes !== undefined) return;
    res.end();
  }

  private async file(path: string): Promise<Buffer | undefined> {
    if (this.options.dir) {
      const root = resolve(this.options.dir);
      const target = resolve(join(root, decodeURIComponent(path)));
      if (target.startsWith(root + sep)) {
        const content = await readFile(target).catch(() => undefined);
        if (content) return content;
      }
    }
    if (path === '/nix-cache-info') {
      const info = this.options.cacheInfo === undefined ? DEFAULT_CACHE_INFO : this.options.cacheInfo;
      return info === null ? undefined : Buffer.from(info);
    }
    return undefined;
  }
}

/** Resolves once `chunk` is handed to the socket, so that a cut that follows never loses it. */
function write(res: ServerResponse, chunk: Buffer): Promise<void> {
  return new Promise((done, fail) => res.write(chunk, (error) => (error ? fail(error) : done())));
}

export interface Blackhole {
  /** `http://127.0.0.1:<port>`: connections to it neither succeed nor fail until they time out. */
  url: string;
  stop(): Promise<void>;
}

// The listener lives in a worker whose event loop is then blocked, so that nothing ever accepts.
const BLACKHOLE_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const server = require('node:net').createServer();
server.listen({ port: workerData.port, host: '127.0.0.1', backlog: 1 }, () => {
  parentPort.postMessage(server.address().port);
  Atomics.wait(workerData.signal, 0, 0);
  server.close();
});`;

/**
 * A TCP port where connecting hangs, as with a firewalled host, for connect-timeout tests. A
 * listener with a tiny backlog never accepts; once filler connections fill its accept queue, the
 * kernel drops further SYNs, so a client stays in "connecting" (the SYN retries take seconds).
 * `port`: e.g. the port of a stopped FakeUpstream, to make a known upstream go dark; default random.
 */
export async function startBlackhole(port = 0): Promise<Blackhole> {
  const signal = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(BLACKHOLE_WORKER, { eval: true, workerData: { signal, port } });
  const [listening] = (await once(worker, 'message')) as [number];
  const fillers: Socket[] = [];
  for (let attempt = 0; attempt < 16; attempt++) {
    const socket = connect(listening, '127.0.0.1').on('error', () => undefined);
    fillers.push(socket);
    const connected = await Promise.race([once(socket, 'connect').then(() => true), sleep(200).then(() => false)]);
    if (!connected) break;
  }
  if (fillers.every((socket) => !socket.connecting)) throw new Error('could not fill the blackhole accept queue');
  return {
    url: `http://127.0.0.1:${listening}`,
    async stop() {
      for (const socket of fillers) socket.destroy();
      Atomics.store(signal, 0, 1);
      Atomics.notify(signal, 0);
      await worker.terminate();
    },
  };
}
