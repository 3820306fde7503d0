import { NixFormatError } from './errors';
import { isStorePathHash } from './hash';

export const STORE_DIR = '/nix/store';

/** Longest name Nix accepts: keeps `<hash>-<name>` within common file-name limits. */
const MAX_NAME_LENGTH = 211;
const NAME = /^[A-Za-z0-9+\-._?=]+$/;

/** `<32 nix32 chars>-<name>`, as in References and Deriver; the name rules are Nix's `checkName`. */
export function isStorePathBaseName(text: string): boolean {
  const name = text.slice(33);
  return isStorePathHash(text.slice(0, 32)) && text[32] === '-' && name.length <= MAX_NAME_LENGTH && NAME.test(name);
}

/** A full store path `/nix/store/<hash>-<name>`. */
export function isStorePath(text: string): boolean {
  return text.startsWith(`${STORE_DIR}/`) && isStorePathBaseName(text.slice(STORE_DIR.length + 1));
}

/** The 32-character hash part of a full store path: the key of `<hash>.narinfo`. */
export function storePathHash(storePath: string): string {
  if (!isStorePath(storePath)) throw new NixFormatError('invalid store path');
  return storePath.slice(STORE_DIR.length + 1, STORE_DIR.length + 33);
}
