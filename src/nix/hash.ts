import { decodeBase64 } from './base64';
import { NixFormatError } from './errors';
import { NIX32_ALPHABET, nix32Decode, nix32Encode } from './nix32';

/** Only SHA-256 appears in narinfo NarHash/FileHash and in fingerprints. */
export type HashAlgorithm = 'sha256';

const SHA256_BYTES = 32;

export class NixHash {
  constructor(
    readonly algo: HashAlgorithm,
    readonly digest: Buffer,
  ) {
    if (digest.length !== SHA256_BYTES) throw new NixFormatError(`${algo} digest must be ${SHA256_BYTES} bytes`);
  }

  /** `sha256:<nix32>`: what Nix writes in narinfos and signs in fingerprints. */
  toNix32String(): string {
    return `${this.algo}:${nix32Encode(this.digest)}`;
  }

  toSri(): string {
    return `${this.algo}-${this.digest.toString('base64')}`;
  }
}

/**
 * Parses `sha256:` followed by nix32 (52 chars), base16 (64) or base64 (44), or SRI `sha256-<base64>`.
 * Caches in the wild send all of these; the encoding is told apart by length, as Nix does.
 */
export function parseHash(text: string): NixHash {
  const prefix = /^([a-z0-9]+)([:-])/.exec(text);
  if (!prefix) throw new NixFormatError('hash lacks an algorithm prefix');
  const [, algo, separator] = prefix;
  if (algo !== 'sha256') throw new NixFormatError(`unsupported hash algorithm '${algo}'`);
  const encoded = text.slice(prefix[0].length);
  return new NixHash(algo, separator === '-' ? decodeBase64Digest(encoded) : decodeDigest(encoded));
}

function decodeDigest(encoded: string): Buffer {
  switch (encoded.length) {
    case 52:
      return nix32Decode(encoded);
    case 64:
      if (!/^[0-9a-fA-F]{64}$/.test(encoded)) throw new NixFormatError('invalid base16 hash');
      return Buffer.from(encoded, 'hex');
    case 44:
      return decodeBase64Digest(encoded);
    default:
      throw new NixFormatError(`invalid sha256 hash length ${encoded.length}`);
  }
}

function decodeBase64Digest(encoded: string): Buffer {
  const digest = decodeBase64(encoded);
  if (digest?.length !== SHA256_BYTES) throw new NixFormatError('invalid base64 sha256 hash');
  return digest;
}

const NIX32_CLASS = `[${NIX32_ALPHABET}]`;
const STORE_PATH_HASH = new RegExp(`^${NIX32_CLASS}{32}$`);
// Lower-case hex only: the hash in a URL is a storage key, and keys are case-sensitive.
const NAR_HASH_PART = new RegExp(`^(?:${NIX32_CLASS}{52}|[0-9a-f]{64})$`);

/** The 32-character hash part of a store path, as used in `<hash>.narinfo` requests. */
export function isStorePathHash(text: string): boolean {
  return STORE_PATH_HASH.test(text);
}

/** A NAR hash as it appears in a NAR URL: 52 nix32 characters or 64 lower-case hex digits. */
export function isNarHashPart(text: string): boolean {
  return NAR_HASH_PART.test(text);
}
