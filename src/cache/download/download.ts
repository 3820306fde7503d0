import { createHash, randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { WriteStream, createWriteStream, mkdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { IntegrityError, SizeLimitError } from './integrity-error';
import { NarExpectation, NarVerifier, createNarVerifier } from './nar-verifier';

export { IntegrityError, SizeLimitError } from './integrity-error';

export type DownloadState = 'running' | 'verifying' | 'done' | 'failed';

/** What the downloaded bytes must match before they may be committed. */
export interface Expectations {
  /** Exact size of the file: one byte more and the transfer is cut there. */
  size?: number;
  /** Raw sha256 digest of the whole file. */
  sha256?: Buffer;
  /** When `size` is unknown: the transfer is cut (SizeLimitError) once it passes this many bytes. */
  maxSize?: number;
  /** The file is a compressed NAR: it must decompress to NarSize bytes hashing to NarHash. */
  nar?: NarExpectation;
}

/**
 * One upstream fetch of one file into a temp file, with any number of readers tailing it while it
 * grows. The bytes are verified (size, sha256) and handed to `commit` before the download counts as
 * done; on any failure readers get an error (so a client sees a broken transfer, never a short 200)
 * and nothing is committed. The temp file lives until the download ended and its last reader left.
 */
export class Download extends EventEmitter {
  readonly path: string;
  state: DownloadState = 'running';
  written = 0;
  /** Set once the upstream tells (Content-Length) or the expectations do. */
  expectedSize?: number;
  error?: Error;
  /** True when the bytes turned out to be in storage already (another instance stored them). */
  foundInStorage = false;
  /** Resolves once readers can start: bytes are arriving, the file is in storage, or it failed. */
  readonly ready: Promise<void>;
  private markReady!: () => void;
  private readers = 0;
  private ended = false;

  constructor(
    readonly key: string,
    tempDir: string,
    private readonly expectations: Expectations,
  ) {
    super();
    this.setMaxListeners(0);
    this.path = join(tempDir, `ncps-dl-${randomUUID()}.tmp`);
    this.expectedSize = expectations.size;
    this.ready = new Promise((resolve) => (this.markReady = resolve));
  }

  /** Nothing to fetch: the object is in storage (stored meanwhile by another instance). */
  completeFromStorage(): void {
    this.foundInStorage = true;
    this.state = 'done';
    this.ended = true;
    this.markReady();
    this.emit('progress');
    this.emit('done');
  }

  /**
   * Streams `source` to the temp file, verifies it, then awaits `commit(path, size)`. Resolves when
   * committed; rejects (and notifies readers) on any failure. A source that sends more than the
   * expected size (or the cap) is destroyed at the first byte too many, before that byte is written;
   * a compressed NAR is decompressed and checked in the same pass, at the decoder's pace.
   */
  async run(source: Readable, commit: (path: string, size: number) => Promise<void>): Promise<void> {
    this.markReady();
    let verifier: NarVerifier | undefined;
    let sink: WriteStream | undefined;
    try {
      // Synchronous on purpose: no await may come between receiving `source` and piping it, or an
      // error it emits meanwhile would have no listener.
      const { size, maxSize, nar } = this.expectations;
      // A decoding failure stops the transfer at once, even while the source is silent.
      if (nar) verifier = createNarVerifier(nar, (e) => meter.destroy(e));
      mkdirSync(join(this.path, '..'), { recursive: true });
      const hash = createHash('sha256');
      const file = (sink = createWriteStream(this.path));
      const meter = new Writable({
        write: (chunk: Buffer, _enc, done) => {
          const overrun = this.overrun(chunk.length, size, maxSize);
          if (overrun) return done(overrun);
          hash.update(chunk);
          const written = new Promise<void>((resolve, reject) => file.write(chunk, (e) => (e ? reject(e) : resolve())));
          // Readers may only be told about bytes the file already has: progress after the write
          // (and after the decoder took them, so that the download follows its pace).
          Promise.all([written, verifier?.feed(chunk)]).then(() => this.progress(chunk.length, done), done);
        },
        final: (done) => file.end(done),
      });
      file.on('error', (e) => meter.destroy(e));
      await pipeline(source, meter);
      this.state = 'verifying';
      this.verify(hash.digest());
      await verifier?.finish();
      await commit(this.path, this.written);
      this.state = 'done';
      this.emit('progress');
      this.emit('done');
    } catch (e) {
      verifier?.abort();
      source.destroy(); // already done by pipeline, unless the failure came before it (no decoder)
      // Closed before the removal below, so that no late open() re-creates the temp file.
      if (sink) await finished(sink.destroy()).catch(() => undefined);
      this.fail(e instanceof Error ? e : new Error(String(e)));
      throw this.error;
    } finally {
      this.ended = true;
      await this.maybeRemove();
    }
  }

  /** Marks the download failed before it ran (e.g. the upstream refused it). */
  fail(error: Error): void {
    if (this.state === 'failed') return;
    this.state = 'failed';
    this.error = error;
    this.markReady();
    this.emit('progress');
    this.emit('failed', error);
  }

  /** A reader starts tailing; call the returned function when it is finished with the temp file. */
  attach(): () => Promise<void> {
    this.readers += 1;
    let released = false;
    return async () => {
      if (released) return;
      released = true;
      this.readers -= 1;
      await this.maybeRemove();
    };
  }

  private progress(bytes: number, done: () => void): void {
    this.written += bytes;
    this.emit('progress');
    done();
  }

  /** The error to end the transfer with when `incoming` more bytes would pass the size or the cap. */
  private overrun(incoming: number, size: number | undefined, maxSize: number | undefined): Error | undefined {
    const total = this.written + incoming;
    if (size !== undefined && total > size) {
      return new IntegrityError(`size mismatch: more than the expected ${size} bytes`);
    }
    if (size === undefined && maxSize !== undefined && total > maxSize) {
      return new SizeLimitError(`larger than the limit of ${maxSize} bytes`);
    }
    return undefined;
  }

  private verify(digest: Buffer): void {
    const { size, sha256 } = this.expectations;
    if (size !== undefined && size !== this.written) {
      throw new IntegrityError(`size mismatch: expected ${size} bytes, got ${this.written}`);
    }
    if (sha256 && !sha256.equals(digest)) throw new IntegrityError('hash mismatch');
  }

  private async maybeRemove(): Promise<void> {
    if (this.ended && this.readers === 0) await rm(this.path, { force: true });
  }
}
