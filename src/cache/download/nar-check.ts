import { IntegrityError } from './integrity-error';

/** What a compressed file must decompress to: the narinfo's NarHash and NarSize. */
export interface NarExpectation {
  /** As the narinfo names it; one that cannot be decoded here fails the check. */
  compression: string;
  /** Raw sha256 digest of the decompressed NAR. */
  narHash: Buffer;
  narSize: number;
}

export function tooLarge(expected: NarExpectation): IntegrityError {
  return new IntegrityError(`NAR decompresses to more than its NarSize of ${expected.narSize} bytes`);
}

export function checkNar(expected: NarExpectation, size: number, digest: Buffer): void {
  if (size !== expected.narSize) {
    throw new IntegrityError(`NarSize mismatch: expected ${expected.narSize} bytes, decompressed ${size}`);
  }
  if (!digest.equals(expected.narHash)) throw new IntegrityError('NarHash mismatch');
}

/**
 * Checks a compressed NAR while its bytes arrive: `feed` each chunk (resolves once the decoder has
 * decoded it, so the download follows the decoder's pace), then `finish`. Fails with an IntegrityError as
 * soon as the output runs past NarSize or the input does not decode, and at the end when the size
 * or hash differ. `onFailure` hears of a failure the moment it happens, even between two feeds.
 */
export interface NarVerifier {
  feed(chunk: Buffer): Promise<void>;
  finish(): Promise<void>;
  abort(): void;
}
