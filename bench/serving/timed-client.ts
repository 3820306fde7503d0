/**
 * The substituting client of the miss rows: HTTP/1.1 GETs, one at a time, on one keep-alive
 * connection per origin, read into one reused buffer (net's `onread`), so that a response leaves no
 * garbage behind. Node's http client allocates a Buffer per socket read: each 32 MiB NAR it received
 * left ~20 ms of garbage collection for this process's V8 helper threads on the clients' CPU (seen
 * with `perf sched`), which the upstream shares, just when ncps asked it for the next path. Bodies
 * must come with Content-Length (ncps and the upstream send it for every file the bench asks for).
 */
import { Hash, createHash } from 'node:crypto';
import { Socket, connect } from 'node:net';
import { performance } from 'node:perf_hooks';

export interface Timed {
  status: number;
  /** The body, with `keep` 'text' (or for an answer that is not 2xx); empty otherwise. */
  text: string;
  bytes: number;
  /** With `keep` 'sha256': the body's digest. */
  sha256?: Buffer;
  /** performance.now() at the first body byte (NaN without a body), and at the last. */
  firstByteAt: number;
  endAt: number;
}

const READ_BUFFER = 1024 * 1024;
const HEAD_END = Buffer.from('\r\n\r\n');

interface Pending {
  keep: 'text' | 'sha256';
  resolve: (timed: Timed) => void;
  reject: (error: Error) => void;
  head: Buffer;
  status: number;
  /** Body bytes still to come; -1 while the head is being read. */
  remaining: number;
  bytes: number;
  hash?: Hash;
  kept: Buffer[];
  firstByteAt: number;
  closes: boolean;
}

class Connection {
  readonly socket: Socket;
  private pending?: Pending;
  closed = false;

  constructor(host: string, port: number, buffer: Buffer) {
    this.socket = connect({ host, port, noDelay: true, onread: { buffer, callback: (n) => this.read(buffer.subarray(0, n)) } });
    this.socket.on('error', (e) => this.fail(e));
    this.socket.on('close', () => {
      this.closed = true;
      this.fail(new Error('connection closed before the answer was whole'));
    });
  }

  get(path: string, host: string, keep: 'text' | 'sha256'): Promise<Timed> {
    return new Promise((resolve, reject) => {
      this.pending = {
        keep,
        resolve,
        reject,
        head: Buffer.alloc(0),
        status: 0,
        remaining: -1,
        bytes: 0,
        kept: [],
        firstByteAt: NaN,
        closes: false,
      };
      this.socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nAccept: */*\r\n\r\n`);
    });
  }

  private fail(error: Error): void {
    const pending = this.pending;
    this.pending = undefined;
    pending?.reject(error);
  }

  /** `data` is only valid during this call: what is kept is copied. */
  private read(data: Buffer): boolean {
    try {
      return this.take(data);
    } catch (e) {
      this.socket.destroy(e instanceof Error ? e : new Error(String(e)));
      return false;
    }
  }

  private take(data: Buffer): boolean {
    const p = this.pending;
    if (!p) {
      this.socket.destroy(new Error(`${data.length} bytes nobody asked for`));
      return false;
    }
    if (p.remaining < 0) {
      const head = Buffer.concat([p.head, data]);
      const end = head.indexOf(HEAD_END);
      if (end < 0) {
        p.head = head;
        return true;
      }
      this.parseHead(p, head.subarray(0, end).toString('latin1'));
      data = head.subarray(end + HEAD_END.length);
    }
    if (data.length > 0) {
      if (data.length > p.remaining) {
        this.socket.destroy(new Error(`more body than Content-Length (${p.remaining} left, ${data.length} came)`));
        return false;
      }
      if (p.bytes === 0) p.firstByteAt = performance.now();
      p.bytes += data.length;
      p.remaining -= data.length;
      if (p.hash) p.hash.update(data);
      else p.kept.push(Buffer.from(data));
    }
    if (p.remaining === 0) this.finish(p);
    return true;
  }

  private parseHead(p: Pending, head: string): void {
    const [statusLine, ...lines] = head.split('\r\n');
    p.status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(statusLine)?.[1] ?? 0);
    const header = (name: string) =>
      lines
        .find((line) => line.toLowerCase().startsWith(`${name}:`))
        ?.slice(name.length + 1)
        .trim();
    const length = header('content-length');
    if (length === undefined) throw new Error(`no Content-Length in: ${statusLine}`);
    p.remaining = Number(length);
    p.closes = header('connection')?.toLowerCase() === 'close';
    if (p.keep === 'sha256' && p.status >= 200 && p.status <= 299) p.hash = createHash('sha256');
  }

  private finish(p: Pending): void {
    const endAt = performance.now();
    this.pending = undefined;
    if (p.closes) {
      this.closed = true;
      this.socket.end();
    }
    p.resolve({
      status: p.status,
      text: Buffer.concat(p.kept).toString(),
      bytes: p.bytes,
      sha256: p.hash?.digest(),
      firstByteAt: p.firstByteAt,
      endAt,
    });
  }
}

export class TimedClient {
  private readonly buffer = Buffer.allocUnsafe(READ_BUFFER);
  private readonly connections = new Map<string, Connection>();

  get(url: string, keep: 'text' | 'sha256'): Promise<Timed> {
    const { host, hostname, port, pathname, search } = new URL(url);
    let connection = this.connections.get(host);
    if (!connection || connection.closed) {
      connection = new Connection(hostname, Number(port), this.buffer);
      this.connections.set(host, connection);
    }
    return connection.get(pathname + search, host, keep);
  }

  close(): void {
    for (const connection of this.connections.values()) connection.socket.destroy();
    this.connections.clear();
  }
}
