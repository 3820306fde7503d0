// The Nix binary cache protocol: pure functions, no Nest, no I/O.
export { compressionFromExtension, COMPRESSIONS, isCompression, narExtension } from './compression';
export type { Compression } from './compression';
export { NixFormatError } from './errors';
export { narInfoFingerprint } from './fingerprint';
export { isNarHashPart, isStorePathHash, NixHash, parseHash } from './hash';
export type { HashAlgorithm } from './hash';
export { parseNarInfo, serializeNarInfo } from './narinfo';
export type { NarInfo } from './narinfo';
export { NIX32_ALPHABET, nix32Decode, nix32Encode, nix32Length } from './nix32';
export {
  formatPublicKey,
  formatSecretKey,
  generateKeyPair,
  parsePublicKey,
  parseSecretKey,
  signFingerprint,
  signedOnlyBy,
  toPublicKey,
  verifyNarInfo,
  verifySignature,
} from './signing';
export type { PublicKey, SecretKey } from './signing';
export { isStorePath, isStorePathBaseName, STORE_DIR, storePathHash } from './store-path';
