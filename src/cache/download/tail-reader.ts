import { FileHandle } from 'node:fs/promises';
import { ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { Download } from './download';

/** Most bytes a reader hands on at a time from the download's memory (its own buffers, not copied). */
const HELD_CHUNK = 1024 * 1024;
/** Bytes read from the file at a time into a reader's buffer (see TailStream.pipe). */
const READ_CHUNK = 512 * 1024;
/** Chunks pushed to a consumer other than an HTTP response are allocated, and smaller. */
const PUSHED_CHUNK = 256 * 1024;
/** Read buffers kept for the next readers once theirs are done. */
const IDLE_BUFFERS_KEPT = 4;
const idleBuffers: Buffer[] = [];

/** The next bytes for a reader, and the reusable buffer they were read into (none: they are the download's own). */
interface Step {
  pieces: Buffer[];
  buffer?: Buffer;
}

/**
 * A stream of a download's bytes from `start` to `end` (inclusive), as they arrive: from memory while
 * the download still holds them (see Download.held), else from its temp file, which has them then.
 * The last byte comes once the download is verified; the stream errors if the download fails before
 * that — so a client is never told a truncated or tampered file was whole. A failure after the
 * verification (e.g. the commit to storage) does not concern it: the bytes it serves are right, and
 * the temp file stays until it is released.
 */
export function tailDownload(download: Download, start = 0, end = Infinity): Readable {
  return new TailStream(download, start, end);
}

class TailStream extends Readable {
  private readonly release: () => Promise<void>;
  private position: number;
  private handle?: FileHandle;
  private pumping = false;
  /** This reader's read buffers not being written (two at most: one is read into while the other is sent). */
  private readonly spare: Buffer[] = [];

  constructor(
    private readonly download: Download,
    start: number,
    private readonly last: number,
  ) {
    super({ highWaterMark: PUSHED_CHUNK });
    this.release = download.attach();
    this.position = start;
    this.once('end', () => void this.release());
  }

  /**
   * Into an HTTP response (Fastify sends a stream body with `pipe`), the bytes go straight to
   * `response.write`: the download's own buffers while it holds them, else chunks read into two
   * buffers of this reader's, each reused once the write's callback says the socket took it — no
   * Readable buffering, no allocation per chunk, however many readers lag behind. The next chunk is
   * taken once the socket took the last one (at once, or when the write's callback says so). Any
   * other destination gets the ordinary pipe.
   */
  override pipe<T extends NodeJS.WritableStream>(destination: T, options?: { end?: boolean }): T {
    if (!(destination instanceof ServerResponse) || this.readableFlowing !== null || this.readableLength > 0 || this.pumping) {
      return super.pipe(destination, options);
    }
    this.pumping = true;
    void this.writeInto(destination, options?.end !== false);
    return destination;
  }

  override _read(): void {
    void this.pushMore();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    for (const buffer of this.spare.splice(0)) if (idleBuffers.length < IDLE_BUFFERS_KEPT) idleBuffers.push(buffer);
    void (async () => {
      // A FileHandle closes once the read under way, if any, has ended.
      await this.handle?.close().catch(() => undefined);
      await this.release();
      callback(error);
    })();
  }

  private async pushMore(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      for (;;) {
        const step = await this.next(PUSHED_CHUNK, (length) => Buffer.allocUnsafe(length));
        if (this.destroyed) return;
        if (!step) {
          this.push(null);
          return;
        }
        let more = true;
        for (const piece of step.pieces) more = this.push(piece);
        if (!more) return;
      }
    } catch (e) {
      this.destroy(e as Error);
    } finally {
      this.pumping = false;
    }
  }

  private async writeInto(response: ServerResponse, endResponse: boolean): Promise<void> {
    try {
      for (;;) {
        const step = await this.next(HELD_CHUNK, () => this.spare.pop() ?? idleBuffers.pop() ?? Buffer.allocUnsafeSlow(READ_CHUNK));
        if (this.destroyed) return this.recycle(step?.buffer);
        if (!step) {
          if (endResponse) response.end();
          // Ends the Readable side too, for whoever waits on it (Fastify).
          this.push(null);
          this.resume();
          return;
        }
        await this.write(response, step);
      }
    } catch (e) {
      this.destroy(e as Error);
    }
  }

  /** Resolves once `response` took the pieces, or this stream was destroyed meanwhile. */
  private write(response: ServerResponse, { pieces, buffer }: Step): Promise<void> {
    return new Promise((resolve) => {
      let taken = true;
      const onClose = () => resolve();
      // Several pieces (the byte held back last time, then the new ones) leave in one writev: one
      // system call, and one wake-up of the client instead of one per piece.
      const corked = pieces.length > 1;
      if (corked) response.cork();
      for (const [i, piece] of pieces.entries()) {
        const lastPiece = i === pieces.length - 1;
        taken = response.write(
          piece,
          lastPiece
            ? () => {
                this.recycle(buffer);
                this.off('close', onClose);
                resolve();
              }
            : undefined,
        );
      }
      if (corked) response.uncork();
      if (taken) resolve();
      else this.once('close', onClose);
    });
  }

  /**
   * The next bytes, at most `max`: held pieces, or a chunk read into `bufferFor(wanted)` (up to its
   * length); null at the end, or once destroyed. Waits while none are available; throws when the
   * download failed before it was verified.
   */
  private async next(max: number, bufferFor: (wanted: number) => Buffer): Promise<Step | null> {
    const { download } = this;
    for (;;) {
      const { verified } = download;
      if (download.state === 'failed' && !verified) throw download.error ?? new Error('download failed');
      // The final byte is held back until the download is verified: a client that knows the
      // length must not receive a whole (but wrong) file before we know it is right.
      const available = Math.min(verified ? download.received : download.received - 1, this.last + 1);
      if (this.position < available) {
        const held = download.held(this.position, Math.min(max, available - this.position));
        if (held) {
          for (const piece of held) this.position += piece.length;
          return { pieces: held };
        }
        if (!this.handle) {
          const handle = await download.file.openForReading();
          if (this.destroyed) {
            await handle.close();
            return null;
          }
          this.handle = handle;
        }
        const buffer = bufferFor(Math.min(max, available - this.position));
        const length = Math.min(buffer.length, available - this.position);
        const { bytesRead } = await this.handle.read(buffer, 0, length, this.position);
        if (bytesRead === 0) throw new Error(`temp file ended at byte ${this.position}, before byte ${available}`);
        this.position += bytesRead;
        return { pieces: [buffer.subarray(0, bytesRead)], buffer };
      }
      if (verified || download.state === 'done' || this.position > this.last) return null;
      if (this.destroyed) return null;
      await new Promise<void>((resolve) => {
        const wake = () => {
          download.off('progress', wake);
          this.off('close', wake);
          resolve();
        };
        download.on('progress', wake);
        this.on('close', wake);
      });
    }
  }

  private recycle(buffer: Buffer | undefined): void {
    if (!buffer) return;
    if (!this.destroyed && this.spare.length < 2) this.spare.push(buffer);
    else if (idleBuffers.length < IDLE_BUFFERS_KEPT) idleBuffers.push(buffer);
  }
}
