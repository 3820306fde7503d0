import { IncomingMessage } from 'node:http';
import { Readable, Transform, TransformCallback } from 'node:stream';
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';
import { UpstreamUnavailableError } from './upstream.errors';

/**
 * Reads a small document (narinfo, nix-cache-info) whole, within a deadline and a size limit, so
 * that an upstream that sends headers and then stalls or streams forever cannot hold a lookup.
 * gzip, deflate and br Content-Encodings are decoded (S3-hosted caches may store narinfos compressed
 * with such a header, whatever the request asked for); others are refused.
 */
export async function readDocument(res: IncomingMessage, label: string, limits: { maxBytes: number; deadlineMs: number }): Promise<string> {
  const timer = setTimeout(
    () => res.destroy(new UpstreamUnavailableError(`upstream ${label}: body not received within ${limits.deadlineMs} ms`, 'timeout')),
    limits.deadlineMs,
  );
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    const decode = decoderFor(res.headers['content-encoding'], label, limits.maxBytes);
    for await (const chunk of res as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > limits.maxBytes) {
        throw new UpstreamUnavailableError(`upstream ${label}: document larger than ${limits.maxBytes} bytes`, 'unsupported');
      }
      chunks.push(chunk);
    }
    if (!res.complete) throw truncated(label);
    return decode(Buffer.concat(chunks)).toString('utf8');
  } catch (error) {
    res.destroy(); // frees the connection whatever went wrong
    throw error instanceof UpstreamUnavailableError ? error : truncated(label, error);
  } finally {
    clearTimeout(timer);
  }
}

function decoderFor(encoding: string | undefined, label: string, maxOutputLength: number): (raw: Buffer) => Buffer {
  const decoder = DECODERS.get((encoding ?? 'identity').trim().toLowerCase());
  if (!decoder) {
    throw new UpstreamUnavailableError(`upstream ${label}: unsupported Content-Encoding '${encoding}'`, 'unsupported');
  }
  return (raw) => {
    try {
      return decoder(raw, { maxOutputLength });
    } catch {
      throw new UpstreamUnavailableError(`upstream ${label}: body is not valid ${encoding}, or too large`, 'unsupported');
    }
  };
}

const DECODERS = new Map<string, (raw: Buffer, options: { maxOutputLength: number }) => Buffer>([
  ['identity', (raw) => raw],
  ['', (raw) => raw],
  ['gzip', gunzipSync],
  ['x-gzip', gunzipSync],
  ['deflate', inflateSync],
  ['br', brotliDecompressSync],
]);

function truncated(label: string, cause?: unknown): UpstreamUnavailableError {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  return new UpstreamUnavailableError(
    `upstream ${label}: connection closed before the end of the body${code ? ` (${code})` : ''}`,
    'truncated',
    undefined,
    code,
  );
}

/**
 * Wraps a NAR response so that its reader can trust what it gets: the stream errors (with an
 * UpstreamUnavailableError) instead of ending when the connection breaks midway, when fewer or more
 * bytes arrive than Content-Length announced, or when the upstream sends nothing for `idleTimeoutMs`
 * while the reader wants more (a reader that is slow itself never trips it). Destroying the returned
 * stream closes the upstream connection. `received` hears of the bytes as they arrive.
 */
export function guardNarBody(
  res: IncomingMessage,
  label: string,
  idleTimeoutMs: number,
  received: (bytes: number) => void = () => undefined,
): { body: Readable; contentLength?: number } {
  const header = res.headers['content-length'];
  const contentLength = header !== undefined && /^[0-9]+$/.test(header) ? Number(header) : undefined;
  return { body: new GuardedBody(res, label, idleTimeoutMs, contentLength, received), contentLength };
}

const BODY_BUFFER_BYTES = 256 * 1024;

class GuardedBody extends Transform {
  private received = 0;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly source: IncomingMessage,
    private readonly label: string,
    private readonly idleTimeoutMs: number,
    private readonly expectedLength: number | undefined,
    private readonly onReceived: (bytes: number) => void,
  ) {
    // Room for a few socket reads (64 KiB each): the response is not paused and resumed around every one.
    super({ writableHighWaterMark: BODY_BUFFER_BYTES });
    // Node emits a broken response's error only to listeners: without this one it would just end.
    source.on('error', (error) => this.destroy(error instanceof UpstreamUnavailableError ? error : truncated(label, error)));
    source.on('close', () => {
      if (!source.readableEnded) this.destroy(truncated(label));
    });
    source.pipe(this);
    this.armIdleTimer();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.received += chunk.length;
    this.onReceived(chunk.length);
    this.armIdleTimer();
    if (this.expectedLength !== undefined && this.received > this.expectedLength) {
      callback(this.lengthMismatch());
    } else {
      callback(null, chunk);
    }
  }

  override _flush(callback: TransformCallback): void {
    clearTimeout(this.timer);
    if (!this.source.complete) callback(truncated(this.label));
    else if (this.expectedLength !== undefined && this.received !== this.expectedLength) callback(this.lengthMismatch());
    else callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    clearTimeout(this.timer);
    if (!this.source.complete) this.source.destroy();
    callback(error);
  }

  /** Restarts the idle countdown (one timer, refreshed per chunk). */
  private armIdleTimer(): void {
    if (this.timer) {
      this.timer.refresh();
      return;
    }
    this.timer = setTimeout(() => {
      // A full buffer means our reader is the slow one: the upstream is not to blame.
      if (this.writableNeedDrain) return this.armIdleTimer();
      this.destroy(new UpstreamUnavailableError(`upstream ${this.label}: NAR body stalled for ${this.idleTimeoutMs} ms`, 'timeout'));
    }, this.idleTimeoutMs);
  }

  private lengthMismatch(): UpstreamUnavailableError {
    return new UpstreamUnavailableError(
      `upstream ${this.label}: NAR body is ${this.received} bytes, Content-Length said ${this.expectedLength}`,
      'truncated',
    );
  }
}
