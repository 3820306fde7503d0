import { createHash, randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createWriteStream, mkdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export type DownloadState = 'running' | 'verifying' | 'done' | 'failed';

/** What the downloaded bytes must match before they may be committed. */
export interface Expectations {
  size?: number;
  /** Raw sha256 digest of the whole file. */
  sha256?: Buffer;
}

export class IntegrityError extends Error {}

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
   * committed; rejects (and notifies readers) on any failure.
   */
  async run(source: Readable, commit: (path: string, size: number) => Promise<void>): Promise<void> {
    this.markReady();
    try {
      // Synchronous on purpose: no await may come between receiving `source` and piping it, or an
      // error it emits meanwhile would have no listener.
      mkdirSync(join(this.path, '..'), { recursive: true });
      const hash = createHash('sha256');
      const sink = createWriteStream(this.path);
      const meter = new Writable({
        write: (chunk: Buffer, _enc, done) => {
          hash.update(chunk);
          // Readers may only be told about bytes the file already has: progress after the write.
          sink.write(chunk, (err) => (err ? done(err) : this.progress(chunk.length, done)));
        },
        final: (done) => sink.end(done),
      });
      sink.on('error', (e) => meter.destroy(e));
      await pipeline(source, meter);
      this.state = 'verifying';
      this.verify(hash.digest());
      await commit(this.path, this.written);
      this.state = 'done';
      this.emit('progress');
      this.emit('done');
    } catch (e) {
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
