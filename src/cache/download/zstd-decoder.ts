import { Transform, TransformCallback } from 'node:stream';
import { DCtx, dStreamOutSize } from 'zstd-napi/binding';

/** Decoded bytes produced per turn of the event loop before yielding to other work. */
const SLICE_BYTES = 1024 * 1024;

/**
 * A streaming zstd decoder that never holds the event loop for long. zstd-napi's DecompressStream
 * runs synchronously and decodes a whole input chunk in one go — a few KiB of crafted input can
 * expand to gigabytes in one call. This one decodes at most SLICE_BYTES per turn, respects the
 * reader's backpressure, and stops between slices once destroyed (e.g. when the output overran
 * the NAR's size).
 */
export class ZstdDecoder extends Transform {
  private readonly dctx = new DCtx();
  private readonly outSize = dStreamOutSize();
  /** True between a frame's first byte and its end: input must not stop there. */
  private inFrame = false;
  private resumeOutput?: () => void;

  constructor() {
    super({ readableHighWaterMark: 1024 * 1024 });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.decode(chunk).then(() => done(), done);
  }

  override _flush(done: TransformCallback): void {
    done(this.inFrame ? new Error('zstd stream ended in the middle of a frame') : null);
  }

  override _read(size: number): void {
    const resume = this.resumeOutput;
    this.resumeOutput = undefined;
    resume?.();
    super._read(size);
  }

  private async decode(input: Buffer): Promise<void> {
    let rest = input;
    let sliced = 0;
    for (;;) {
      if (this.destroyed) return;
      const out = Buffer.allocUnsafe(this.outSize);
      const [remaining, produced, consumed] = this.dctx.decompressStream(out, rest);
      rest = rest.subarray(consumed);
      this.inFrame = remaining !== 0;
      // The decoder may still hold output when it filled `out`, even with all input consumed.
      const more = rest.length > 0 || produced === out.length;
      if (produced > 0 && !this.push(out.subarray(0, produced)) && more) {
        await new Promise<void>((resume) => (this.resumeOutput = resume));
      }
      if (!more) return;
      sliced += produced;
      if (sliced >= SLICE_BYTES) {
        sliced = 0;
        await new Promise((next) => setImmediate(next));
      }
    }
  }
}
