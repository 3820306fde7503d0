import { createPrivateKey, createPublicKey, generateKeyPairSync, KeyObject, sign, verify } from 'node:crypto';
import { decodeBase64 } from './base64';
import { NixFormatError } from './errors';
import { narInfoFingerprint } from './fingerprint';
import type { NarInfo } from './narinfo';

/** A Nix signing key (`<name>:<base64 of seed ‖ public key>`). */
export interface SecretKey {
  name: string;
  /** The 32-byte Ed25519 seed. */
  seed: Buffer;
  /** The 32-byte public key stored after the seed. */
  publicKey: Buffer;
}

/** A Nix trusted public key (`<name>:<base64 of 32 bytes>`). */
export interface PublicKey {
  name: string;
  key: Buffer;
}

const KEY_BYTES = 32;
const SIGNATURE_BYTES = 64;
// DER wrappers that let node:crypto use Nix's raw Ed25519 keys.
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

function privateKeyObject(seed: Buffer): KeyObject {
  return createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
}

function publicKeyObject(key: Buffer): KeyObject {
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, key]), format: 'der', type: 'spki' });
}

function rawPublicKey(key: KeyObject): Buffer {
  return key.export({ format: 'der', type: 'spki' }).subarray(SPKI_PREFIX.length);
}

/** Splits `<name>:<base64>` like Nix (at the first colon); surrounding whitespace, e.g. a newline, is dropped. */
function splitKeyText(text: string, what: string): { name: string; bytes: Buffer | null } {
  const trimmed = text.trim();
  const colon = trimmed.indexOf(':');
  if (colon <= 0) throw new NixFormatError(`${what} is not '<name>:<base64>'`);
  return { name: trimmed.slice(0, colon), bytes: decodeBase64(trimmed.slice(colon + 1)) };
}

/** Messages never quote the input: it is secret. */
export function parseSecretKey(text: string): SecretKey {
  const { name, bytes } = splitKeyText(text, 'secret key');
  if (bytes?.length !== 2 * KEY_BYTES) throw new NixFormatError('secret key is not 64 base64-encoded bytes');
  const seed = bytes.subarray(0, KEY_BYTES);
  const publicKey = bytes.subarray(KEY_BYTES);
  // Nix (libsodium) signs with the stored public half; if it is not the seed's, no signature would verify.
  if (!rawPublicKey(createPublicKey(privateKeyObject(seed))).equals(publicKey)) {
    throw new NixFormatError('secret key does not match its public half');
  }
  return { name, seed, publicKey };
}

export function parsePublicKey(text: string): PublicKey {
  const { name, bytes } = splitKeyText(text, 'public key');
  if (bytes?.length !== KEY_BYTES) throw new NixFormatError(`public key '${name}' is not 32 base64-encoded bytes`);
  return { name, key: bytes };
}

/** A fresh key pair, like `nix-store --generate-binary-cache-key <name>`; the name is conventionally `<host>-1`. */
export function generateKeyPair(name: string): { secretKey: SecretKey; publicKey: PublicKey } {
  if (!/^[^\s:]+$/.test(name)) throw new NixFormatError('key name must be non-empty, without colons or spaces');
  const pair = generateKeyPairSync('ed25519');
  const seed = pair.privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(PKCS8_PREFIX.length);
  const key = rawPublicKey(pair.publicKey);
  return { secretKey: { name, seed, publicKey: key }, publicKey: { name, key } };
}

export function toPublicKey(secret: SecretKey): PublicKey {
  return { name: secret.name, key: secret.publicKey };
}

export function formatSecretKey(secret: SecretKey): string {
  return `${secret.name}:${Buffer.concat([secret.seed, secret.publicKey]).toString('base64')}`;
}

export function formatPublicKey(key: PublicKey): string {
  return `${key.name}:${key.key.toString('base64')}`;
}

/** Building a KeyObject costs about as much as signing itself: keep one per key (a served narinfo is signed per hit). */
const signingKeys = new WeakMap<SecretKey, KeyObject>();

/** `<name>:<base64 signature>`; Ed25519 is deterministic, so this equals what Nix writes for the same key. */
export function signFingerprint(secret: SecretKey, fingerprint: string): string {
  let key = signingKeys.get(secret);
  if (!key) signingKeys.set(secret, (key = privateKeyObject(secret.seed)));
  const signature = sign(null, Buffer.from(fingerprint), key);
  return `${secret.name}:${signature.toString('base64')}`;
}

/** True when a key with the signature's name verifies it; unknown names and malformed signatures are false. */
export function verifySignature(publicKeys: readonly PublicKey[], fingerprint: string, sig: string): boolean {
  const colon = sig.indexOf(':');
  if (colon <= 0) return false;
  const name = sig.slice(0, colon);
  const signature = decodeBase64(sig.slice(colon + 1));
  if (signature?.length !== SIGNATURE_BYTES) return false;
  const data = Buffer.from(fingerprint);
  return publicKeys.some((key) => key.name === name && verify(null, data, verifyingKey(key), signature));
}

/** Like signingKeys: a KeyObject per trusted key (building one costs more than verifying with it). */
const verifyingKeys = new WeakMap<PublicKey, KeyObject>();

function verifyingKey(key: PublicKey): KeyObject {
  let object = verifyingKeys.get(key);
  if (!object) verifyingKeys.set(key, (object = publicKeyObject(key.key)));
  return object;
}

/** True when any of the narinfo's Sigs verifies with one of the keys. */
export function verifyNarInfo(info: NarInfo, publicKeys: readonly PublicKey[]): boolean {
  const fingerprint = narInfoFingerprint(info);
  return info.sigs.some((sig) => verifySignature(publicKeys, fingerprint, sig));
}

/**
 * A copy whose only signature is by `secret`, every other one dropped: what a single-key binary cache
 * (or a test upstream) serves. The cache's own signing keeps the others (SigningKeyService.sign).
 */
export function signedOnlyBy(info: NarInfo, secret: SecretKey): NarInfo {
  return { ...info, sigs: [signFingerprint(secret, narInfoFingerprint(info))] };
}
