import { OnModuleDestroy } from '@nestjs/common';
import { IncomingHttpHeaders } from 'node:http';
import { availableParallelism } from 'node:os';
import { Readable, Transform, TransformCallback, pipeline } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { ZSTD_WORKER_SOURCE } from './zstd-worker';

/** `<hash>.nar` without a compression extension: the NAR bytes themselves. */
export function isUncompressedNar(name: string): boolean {
  return /\.nar$/.test(name);
}

/** True when the client lists zstd in Accept-Encoding (with a non-zero q) and the NAR is uncompressed. */
export function wantsZstd(name: string, headers: IncomingHttpHeaders): boolean {
  if (!isUncompressedNar(name)) return false;
  const accepted = String(headers['accept-encoding'] ?? '')
    .split(',')
    .map((part) => part.trim().split(';'));
  return accepted.some(([coding, ...params]) => {
    if (coding.trim().toLowerCase() !== 'zstd') return false;
    const q = params.map((p) => /^\s*q=([\d.]+)\s*$/.exec(p)?.[1]).find((v) => v !== undefined);
    return q === undefined || Number(q) > 0;
  });
}

export interface ZstdPoolSize {
  /** Encoder threads. */
  workers: number;
  /** Streams a thread encodes at once (interleaved chunk by chunk). */
  streamsPerWorker: number;
}

/**
 * One thread on a 2-core machine, two above: the event loop always keeps a core of its own. Four
 * streams per thread keep each client near 100 MB/s of input at zstd's default level.
 */
export function defaultZstdPoolSize(): ZstdPoolSize {
  return { workers: Math.min(2, Math.max(1, availableParallelism() - 1)), streamsPerWorker: 4 };
}

interface EncoderThread {
  worker: Worker;
  streams: Map<number, ZstdWorkerStream>;
}

/**
 * On-the-fly zstd Content-Encoding, done on a small fixed pool of worker threads so compressing a
 * big NAR never runs on the event loop. The number of streams encoded at once is capped; past the
 * cap `hasRoom()` is false and the caller answers with the identity encoding instead of queueing:
 * the client accepts identity too, it costs no CPU and starts at once (with Content-Length and
 * Range), whereas a queued client would get no byte until someone else's NAR is encoded.
 * Threads start on first use and are unref'd; they stop when the module is destroyed.
 */
export class ZstdEncoderPool implements OnModuleDestroy {
  private readonly threads: (EncoderThread | undefined)[];
  private nextId = 1;
  private closed = false;

  constructor(readonly size: ZstdPoolSize = defaultZstdPoolSize()) {
    this.threads = new Array<EncoderThread | undefined>(size.workers).fill(undefined);
  }

  /** Streams being encoded right now. */
  get active(): number {
    return this.threads.reduce((sum, t) => sum + (t?.streams.size ?? 0), 0);
  }

  hasRoom(): boolean {
    return this.active < this.size.workers * this.size.streamsPerWorker;
  }

  /**
   * The source compressed with zstd; an error on either side destroys both, so the client sees a
   * broken transfer. Only call after `hasRoom()` said yes (nothing may be awaited in between).
   */
  encode(source: Readable): Readable {
    if (this.closed || !this.hasRoom()) throw new Error('zstd encoder pool is full');
    const slot = this.leastBusy();
    const thread = (this.threads[slot] ??= this.startThread(slot));
    const encoder = new ZstdWorkerStream(thread.worker, this.nextId++, () => thread.streams.delete(encoder.id));
    thread.streams.set(encoder.id, encoder);
    return pipeline(source, encoder, () => undefined);
  }

  async onModuleDestroy(): Promise<void> {
    this.closed = true;
    const running = this.threads.filter((t): t is EncoderThread => t !== undefined);
    this.threads.fill(undefined);
    await Promise.all(running.map((t) => t.worker.terminate()));
  }

  private leastBusy(): number {
    let best = 0;
    for (let i = 1; i < this.threads.length; i++) {
      if ((this.threads[i]?.streams.size ?? 0) < (this.threads[best]?.streams.size ?? 0)) best = i;
    }
    return best;
  }

  private startThread(slot: number): EncoderThread {
    const worker = new Worker(ZSTD_WORKER_SOURCE, {
      eval: true,
      workerData: { bindingPath: require.resolve('zstd-napi/binding') },
    });
    worker.unref();
    const thread: EncoderThread = { worker, streams: new Map() };
    worker.on('message', (msg: WorkerReply) => thread.streams.get(msg.id)?.onReply(msg));
    const fail = (error: Error) => {
      // A dead thread takes its streams with it; the next stream starts a fresh one.
      if (this.threads[slot] === thread) this.threads[slot] = undefined;
      for (const stream of [...thread.streams.values()]) stream.destroy(error);
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`zstd encoder thread exited (${code})`)));
    return thread;
  }
}

interface WorkerReply {
  id: number;
  type: 'data' | 'end' | 'error';
  chunk?: Uint8Array;
  message?: string;
}

/**
 * One encoding, as a Transform whose work happens on a worker thread. One input chunk is in flight
 * at a time; its compressed bytes are pushed before the chunk's callback runs, so Transform's own
 * backpressure holds: no more input is taken while the reader is behind.
 */
class ZstdWorkerStream extends Transform {
  private pending: TransformCallback | null = null;
  private finished = false;

  constructor(
    private readonly worker: Worker,
    readonly id: number,
    private readonly onClose: () => void,
  ) {
    super();
    this.worker.postMessage({ id, type: 'open' });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    // A copy of exactly this chunk, moved (not cloned) to the thread: a pooled Buffer would clone its whole slab.
    const copy = new Uint8Array(chunk);
    this.pending = callback;
    this.worker.postMessage({ id: this.id, type: 'write', chunk: copy }, [copy.buffer]);
  }

  override _flush(callback: TransformCallback): void {
    this.pending = callback;
    this.worker.postMessage({ id: this.id, type: 'end' });
  }

  onReply(msg: WorkerReply): void {
    const callback = this.pending;
    this.pending = null;
    if (msg.type === 'error') {
      this.destroy(new Error(`zstd encoding failed: ${msg.message}`));
      return;
    }
    if (msg.type === 'end') {
      // The thread is done with it: free the pool's place even if the reader is still behind.
      this.finished = true;
      this.onClose();
    }
    if (msg.chunk && msg.chunk.byteLength > 0) {
      this.push(Buffer.from(msg.chunk.buffer, msg.chunk.byteOffset, msg.chunk.byteLength));
    }
    callback?.();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.finished) this.worker.postMessage({ id: this.id, type: 'abort' });
    this.onClose();
    callback(error);
  }
}
