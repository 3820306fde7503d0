import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import { createBrotliDecompress, createGunzip } from 'node:zlib';
import type * as Lzma from 'lzma-native';
import { Bzip2Verifier } from './bzip2-verifier';
import { IntegrityError } from './integrity-error';
import { NarExpectation, NarVerifier, checkNar, tooLarge } from './nar-check';
import type { ZstdDecoder } from './zstd-decoder';

export type { NarExpectation, NarVerifier } from './nar-check';

const MIN_SLICE = 1024;
const MAX_SLICE = 64 * 1024;
const OUTPUT_PER_SLICE = 4 * 1024 * 1024;

/** xz memory limit: xz -9 needs 65 MiB to decode; no honest NAR needs more than this. */
const XZ_MEMLIMIT = 256 * 1024 * 1024;

/**
 * The decoders run off the event loop or in bounded slices: zlib (gzip, br) in libuv's threadpool,
 * lzma-native in its own thread, zstd in ≤1 MiB slices (ZstdDecoder), bzip2 — only a pure-JS
 * decoder is at hand, which spends ~200 ms per block — in a worker thread.
 */
const DECODERS: Partial<Record<string, () => Transform>> = {
  gzip: () => createGunzip(),
  br: () => createBrotliDecompress(),
  xz: () => {
    const lzma = xzLibrary();
    return lzma.createStream('streamDecoder', { memlimit: XZ_MEMLIMIT, flags: lzma.CONCATENATED });
  },
  zstd: () => new (zstdDecoder())(),
};

// The decoders' native libraries are loaded on the first NAR that needs them: a cache whose upstreams
// serve another compression (or a FileHash to check against) would keep ~11 MiB in memory for nothing.
let xz: typeof Lzma | undefined;
let zstd: typeof ZstdDecoder | undefined;

function xzLibrary(): typeof Lzma {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded on demand (see above)
  xz ??= require('lzma-native') as typeof Lzma;
  return xz;
}

function zstdDecoder(): typeof ZstdDecoder {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded on demand (see above)
  zstd ??= (require('./zstd-decoder') as typeof import('./zstd-decoder')).ZstdDecoder;
  return zstd;
}

/** A verifier for `expected`; throws an IntegrityError for a compression it cannot decode. */
export function createNarVerifier(expected: NarExpectation, onFailure: (error: IntegrityError) => void): NarVerifier {
  if (expected.compression === 'bzip2') return new Bzip2Verifier(expected, onFailure);
  const decoder = DECODERS[expected.compression];
  if (!decoder) throw new IntegrityError(`cannot check a NAR compressed with ${expected.compression} without a FileHash`);
  return new StreamNarVerifier(decoder(), expected, onFailure);
}

const trailingBytes = () => new IntegrityError('NAR file has bytes after the end of its compressed data');

class StreamNarVerifier implements NarVerifier {
  private readonly hash = createHash('sha256');
  private decoded = 0;
  private fed = 0;
  private sliceBytes = MIN_SLICE;
  private decoderEnded = false;
  private error?: IntegrityError;
  private readonly failure: Promise<never>;
  private rejectFailure!: (error: IntegrityError) => void;
  private readonly ended: Promise<void>;

  constructor(
    private readonly decoder: Transform,
    private readonly expected: NarExpectation,
    private readonly onFailure: (error: IntegrityError) => void,
  ) {
    this.failure = new Promise<never>((_, reject) => (this.rejectFailure = reject));
    this.failure.catch(() => undefined);
    this.ended = new Promise((resolve) => decoder.once('end', resolve));
    void this.ended.then(() => (this.decoderEnded = true));
    decoder.on('data', (chunk: Buffer) => this.take(chunk));
    decoder.on('error', (e: Error) => this.undecodable(e));
  }

  /**
   * Hands the chunk to the decoder in slices, one at a time, each after the previous one was decoded.
   * lzma-native decodes a whole written chunk before JS sees any output, holding all of it in memory,
   * so a 64 KiB slice of an xz bomb could mean gigabytes at once. The slice is sized from the last
   * one's expansion to decode to about OUTPUT_PER_SLICE: 64 KiB for real NARs, 1 KiB for a bomb.
   */
  async feed(chunk: Buffer): Promise<void> {
    for (let at = 0; at < chunk.length;) {
      // Brotli's decoder ends at the end of its stream and ignores whatever follows: refuse it here.
      if (this.decoderEnded) this.fail(trailingBytes());
      if (this.error) throw this.error;
      const piece = chunk.subarray(at, at + this.sliceBytes);
      at += piece.length;
      this.fed += piece.length;
      const before = this.decoded;
      const written = new Promise<void>((resolve, reject) => this.decoder.write(piece, (e) => (e ? reject(e) : resolve())));
      await Promise.race([written, this.failure]).catch((e: Error) => {
        this.undecodable(e);
        throw this.error as IntegrityError;
      });
      const produced = this.decoded - before;
      const next = produced > 0 ? Math.floor((piece.length * OUTPUT_PER_SLICE) / produced) : this.sliceBytes * 2;
      this.sliceBytes = Math.min(MAX_SLICE, Math.max(MIN_SLICE, next));
    }
  }

  async finish(): Promise<void> {
    if (this.error) throw this.error;
    this.decoder.end();
    await Promise.race([this.ended, this.failure]);
    // zlib decoders count the input they consumed; less than was fed means bytes after the end.
    const consumed = (this.decoder as Partial<Record<'bytesWritten', number>>).bytesWritten;
    if (consumed !== undefined && consumed < this.fed) throw trailingBytes();
    checkNar(this.expected, this.decoded, this.hash.digest());
  }

  abort(): void {
    this.decoder.destroy();
  }

  private take(chunk: Buffer): void {
    if (this.error) return;
    this.decoded += chunk.length;
    if (this.decoded > this.expected.narSize) return this.fail(tooLarge(this.expected));
    this.hash.update(chunk);
  }

  private undecodable(e: Error): void {
    this.fail(new IntegrityError(`NAR does not decompress as ${this.expected.compression}: ${e.message}`));
  }

  private fail(error: IntegrityError): void {
    if (this.error) return;
    this.error = error;
    this.decoder.destroy();
    this.rejectFailure(error);
    this.onFailure(error);
  }
}
