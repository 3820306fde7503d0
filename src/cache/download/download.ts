import { EventEmitter } from 'node:events';
import { Readable, finished } from 'node:stream';
import { BatchQueue, coalesce } from './batch-queue';
import { Hashing, RunningHash } from './hashing';
import { IntegrityError, SizeLimitError } from './integrity-error';
import { NarExpectation, NarVerifier, createNarVerifier } from './nar-verifier';
import { TempFile, TempWriter } from './temp-files';

export { IntegrityError, SizeLimitError } from './integrity-error';

export type DownloadState = 'running' | 'verifying' | 'verified' | 'done' | 'failed';

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
 * How far the source may run ahead of the temp file (and of the decoder, for a compressed NAR):
 * while one write is under way the next batch gathers up to this, then the source is paused.
 */
const MAX_BATCH_BYTES = 1024 * 1024;
/**
 * Received bytes stay in memory until they are written, and the last ones written up to this size
 * besides: readers following the download closely (the usual case) get them from there, without
 * waiting for the file nor reading it back.
 */
const RECENT_BYTES = 2 * MAX_BATCH_BYTES;

/**
 * One upstream fetch of one file into a temp file, with any number of readers tailing it while it
 * grows. The bytes are verified (size, sha256, decompressed NAR) before readers get the last byte
 * and before they are handed to `commit`; on a failure before that, readers get an error (so a
 * client sees a broken transfer, never a short 200) and nothing is committed. The temp file lives
 * until the download ended and its last reader left.
 */
export class Download extends EventEmitter {
  state: DownloadState = 'running';
  /** Bytes taken from the source (within the size limits): what readers may have, the last one once `verified`. */
  received = 0;
  /** Bytes in the temp file. */
  written = 0;
  /** True once every byte was received and checked: readers may have all of it, even if the commit fails later. */
  verified = false;
  /** Set once the upstream tells (Content-Length) or the expectations do. */
  expectedSize?: number;
  error?: Error;
  /** True when the bytes turned out to be in storage already (another instance stored them). */
  foundInStorage = false;
  /** Resolves once readers can start: bytes are arriving, the file is in storage, or it failed. */
  readonly ready: Promise<void>;
  private markReady!: () => void;
  /** True once storage was found without the object (see notInStorage), at the latest when `run` began. */
  private started = false;
  private readers = 0;
  private ended = false;
  /** The received chunks still in memory (see RECENT_BYTES), oldest first, from offset `memoryStart`. */
  private memory: Buffer[] = [];
  private memoryStart = 0;
  private memoryBytes = 0;
  private wakeScheduled = false;

  constructor(
    readonly key: string,
    /** Where the bytes are spooled (see TempFiles). */
    readonly file: TempFile,
    private readonly expectations: Expectations,
    /** What the bytes are hashed with as they arrive (see Hashing). */
    private readonly hashing: Hashing,
  ) {
    super();
    this.setMaxListeners(0);
    this.expectedSize = expectations.size;
    this.ready = new Promise((resolve) => (this.markReady = resolve));
  }

  /** The temp file's path (what `commit` is handed, and readers open). */
  get path(): string {
    return this.file.path;
  }

  /** Bytes are being fetched, or verified and being committed: the object was not in storage when it began. */
  get fetching(): boolean {
    return this.started && this.state !== 'done' && this.state !== 'failed';
  }

  /**
   * Storage was checked under the download lock and does not hold the object (or, for a narinfo
   * fetched just now, is presumed not to, see NarDownloader.run): from now on the download is
   * `fetching`, so a client asking for the object joins it and waits for `ready` instead of looking
   * in storage itself while the upstream is still being asked.
   */
  notInStorage(): void {
    this.started = true;
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
   * Takes `source` into the temp file, verifies it, releases the last byte to readers, then awaits
   * `commit(path, size)`. Resolves when committed; rejects (and, unless the bytes were verified
   * already, notifies readers) on any failure. A source that sends more than the expected size (or
   * the cap) is destroyed at the first byte too many, before that byte is written. Readers may have
   * each chunk as soon as it arrived (they are woken once per turn of the event loop, not per chunk).
   * Each is hashed on arrival, while earlier ones are being written: the file is written in batches,
   * one at a time; a compressed NAR without FileHash is decompressed and checked beside them, the
   * source following the slower of the file and the decoder. `onReceived` hears of every chunk taken.
   */
  async run(source: Readable, commit: (path: string, size: number) => Promise<void>, onReceived?: (bytes: number) => void): Promise<void> {
    this.started = true;
    this.markReady();
    let verifier: NarVerifier | undefined;
    let file: BatchQueue | undefined;
    let decoder: BatchQueue | undefined;
    let writer: TempWriter | undefined;
    try {
      // Synchronous on purpose: no await may come between receiving `source` and listening to it, or
      // an error it emits meanwhile would have no listener. A decoding failure stops the transfer at
      // once, even while the source is silent.
      if (this.expectations.nar) verifier = createNarVerifier(this.expectations.nar, (e) => source.destroy(e));
      const out = (writer = this.file.create());
      // A sink that took its queue lets the source go on; one that failed stops it.
      const taken = (error?: Error) => {
        if (error) source.destroy(error);
        else if (source.isPaused() && (file?.queued ?? 0) < MAX_BATCH_BYTES && (decoder?.queued ?? 0) < MAX_BATCH_BYTES) source.resume();
      };
      file = new BatchQueue(async (chunks, bytes) => {
        await out.writeAt(coalesce(chunks, bytes), this.written);
        this.written += bytes;
        this.forgetWritten();
      }, taken);
      const check = verifier;
      if (check) {
        decoder = new BatchQueue(async (chunks, bytes) => {
          for (const chunk of coalesce(chunks, bytes)) await check.feed(chunk);
        }, taken);
      }
      // Hashed only when there is a hash to check (a compressed NAR without FileHash: its decoder checks it).
      const hash = this.expectations.sha256 ? this.hashing.sha256() : undefined;
      await this.receive(source, hash, [file, decoder], onReceived);
      await file.settled();
      this.state = 'verifying';
      this.verify(hash?.digest());
      await decoder?.settled();
      await verifier?.finish();
      this.verified = true;
      this.state = 'verified';
      this.emit('progress');
      writer = undefined;
      await out.close();
      await commit(this.path, this.written);
      this.state = 'done';
      this.emit('progress');
      this.emit('done');
    } catch (e) {
      verifier?.abort();
      source.destroy(); // already destroyed, unless the failure came after the source ended
      // Settled and closed before the removal below, so that no late write re-creates the temp file.
      await file?.settled().catch(() => undefined);
      if (writer !== undefined) await writer.close().catch(() => undefined);
      this.fail(e instanceof Error ? e : new Error(String(e)));
      throw this.error as Error;
    } finally {
      this.ended = true;
      this.memory = [];
      this.memoryStart = this.received;
      this.memoryBytes = 0;
      await this.maybeRemove();
    }
  }

  /**
   * Up to `length` received bytes from `position` when they are still in memory, without copying
   * (tiny chunks are joined); undefined when they are not: they are in the file then.
   */
  held(position: number, length: number): Buffer[] | undefined {
    const to = Math.min(position + length, this.memoryStart + this.memoryBytes);
    if (position < this.memoryStart || position >= to) return undefined;
    const found: Buffer[] = [];
    let bytes = 0;
    let at = this.memoryStart;
    for (const chunk of this.memory) {
      const end = at + chunk.length;
      if (end > position) {
        const piece = chunk.subarray(Math.max(0, position - at), Math.min(chunk.length, to - at));
        found.push(piece);
        bytes += piece.length;
      }
      at = end;
      if (at >= to) break;
    }
    return coalesce(found, bytes);
  }

  /**
   * Hashes and feeds `sinks` every chunk of `source` until it ended, pausing it while any sink has a
   * full batch queued. Rejects with the first failure: the source's (a sink's
   * failure destroys the source), or a size overrun (the source is then destroyed at once, the chunk
   * dropped).
   */
  private receive(
    source: Readable,
    hash: RunningHash | undefined,
    sinks: (BatchQueue | undefined)[],
    onReceived?: (bytes: number) => void,
  ): Promise<void> {
    const { size, maxSize } = this.expectations;
    const queues = sinks.filter((sink): sink is BatchQueue => sink !== undefined);
    return new Promise((resolve, reject) => {
      let failure: Error | undefined;
      const fail = (e: Error) => {
        failure ??= e;
        source.destroy(failure);
      };
      source.on('data', (chunk: Buffer) => {
        if (failure) return;
        const overrun = this.overrun(chunk.length, size, maxSize);
        if (overrun) return fail(overrun);
        this.received += chunk.length;
        onReceived?.(chunk.length);
        hash?.update(chunk);
        for (const queue of queues) queue.push(chunk);
        this.memory.push(chunk);
        this.memoryBytes += chunk.length;
        this.wakeReaders();
        if (queues.some((queue) => queue.queued >= MAX_BATCH_BYTES)) source.pause();
      });
      finished(source, (e) => {
        const error = failure ?? e;
        if (error) reject(error);
        else resolve();
      });
    });
  }

  /** Marks the download failed (e.g. the upstream refused it, or the commit failed). */
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

  /** The error to end the transfer with when `incoming` more bytes would pass the size or the cap. */
  private overrun(incoming: number, size: number | undefined, maxSize: number | undefined): Error | undefined {
    const total = this.received + incoming;
    if (size !== undefined && total > size) {
      return new IntegrityError(`size mismatch: more than the expected ${size} bytes`);
    }
    if (size === undefined && maxSize !== undefined && total > maxSize) {
      return new SizeLimitError(`larger than the limit of ${maxSize} bytes`);
    }
    return undefined;
  }

  private verify(digest: Buffer | undefined): void {
    const { size, sha256 } = this.expectations;
    if (size !== undefined && size !== this.written) {
      throw new IntegrityError(`size mismatch: expected ${size} bytes, got ${this.written}`);
    }
    if (sha256 && !digest?.equals(sha256)) throw new IntegrityError('hash mismatch');
  }

  /**
   * Wakes readers for the chunks received during this turn of the event loop: at once for the first
   * (a reader waiting for it sends it right away), once more at the end of the turn for the others,
   * which arrive while the socket is being read — two wake-ups however many chunks came.
   */
  private wakeReaders(): void {
    if (this.wakeScheduled) return;
    this.wakeScheduled = true;
    queueMicrotask(() => this.emit('progress'));
    setImmediate(() => {
      this.wakeScheduled = false;
      this.emit('progress');
    });
  }

  /** Drops from memory the oldest chunks that are in the file, keeping RECENT_BYTES besides the ones that are not. */
  private forgetWritten(): void {
    const { memory } = this;
    const written = (chunk: Buffer) => this.memoryStart + chunk.length <= this.written;
    while (memory.length > 1 && written(memory[0]) && this.memoryBytes - memory[0].length >= RECENT_BYTES) {
      const chunk = memory.shift()!;
      this.memoryStart += chunk.length;
      this.memoryBytes -= chunk.length;
    }
  }

  private async maybeRemove(): Promise<void> {
    if (this.ended && this.readers === 0) await this.file.remove();
  }
}
