import { BadRequestError } from 'src/common/errors';
import { isStorePathHash, STORE_DIR } from 'src/nix';

/** `<hash>.narinfo` (the URL of a pin) → the store path hash, or a 400. */
export function parsePinName(name: string): string {
  const match = /^([^./]+)\.narinfo$/.exec(name);
  if (!match) throw new BadRequestError('expected <hash>.narinfo');
  if (!isStorePathHash(match[1])) throw new BadRequestError('invalid store path hash');
  return match[1];
}

/**
 * What `ncps pin` accepts for a path: a store path (`/nix/store/<hash>-<name>`), its base name, the
 * bare hash or `<hash>.narinfo` → the store path hash, or a 400 naming what is wrong.
 */
export function parsePinTarget(text: string): string {
  let rest = text.trim();
  if (rest.startsWith(`${STORE_DIR}/`)) rest = rest.slice(STORE_DIR.length + 1);
  if (rest.endsWith('.narinfo')) rest = rest.slice(0, -'.narinfo'.length);
  const hash = rest.slice(0, 32);
  if (!isStorePathHash(hash) || (rest.length > 32 && rest[32] !== '-')) {
    throw new BadRequestError(`"${text}" is neither a store path nor a store path hash`);
  }
  return hash;
}
