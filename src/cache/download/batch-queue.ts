/**
 * Chunks waiting for one consumer that takes them a batch at a time: while a batch is being consumed
 * (a file write, a decoder's turn), the chunks that arrive meanwhile queue up and go together in the
 * next one. So a fast consumer sees the chunks one by one, a slow one in few large batches, and tiny
 * chunks never cost one consumer round trip each. The first failure stops the queue: later chunks
 * are dropped and `settled` rejects with it.
 */
export class BatchQueue {
  /** Bytes waiting for the consumer (the batch being consumed not included). */
  queued = 0;
  private chunks: Buffer[] = [];
  private running?: Promise<void>;
  private error?: Error;

  constructor(
    private readonly consume: (chunks: Buffer[], bytes: number) => Promise<void>,
    /** Called each time the consumer took the queued chunks, and (with the error) once it failed. */
    private readonly onTaken: (error?: Error) => void,
  ) {}

  push(chunk: Buffer): void {
    if (this.error) return;
    this.chunks.push(chunk);
    this.queued += chunk.length;
    this.running ??= this.drain();
  }

  /** Resolves once every pushed chunk was consumed; rejects with the consumer's failure. */
  async settled(): Promise<void> {
    await this.running;
    if (this.error) throw this.error;
  }

  private async drain(): Promise<void> {
    try {
      while (this.chunks.length > 0) {
        const batch = this.chunks;
        const bytes = this.queued;
        this.chunks = [];
        this.queued = 0;
        this.onTaken();
        await this.consume(batch, bytes);
      }
    } catch (e) {
      this.error = e instanceof Error ? e : new Error(String(e));
      this.chunks = [];
      this.queued = 0;
      this.onTaken(this.error);
    } finally {
      this.running = undefined;
    }
  }
}

/** One buffer for a batch of small chunks (a copy is cheaper than a syscall or a hand-over per chunk). */
export function coalesce(chunks: Buffer[], bytes: number): Buffer[] {
  return chunks.length > 1 && bytes / chunks.length < 16 * 1024 ? [Buffer.concat(chunks, bytes)] : chunks;
}
