import { BadRequestError } from 'src/common/errors';
import { Compression, compressionFromExtension, isNarHashPart, isStorePathHash, narExtension, NixFormatError, parseHash } from 'src/nix';

const NARINFO_NAME = /^([^./]+)\.narinfo$/;

/** `<hash>.narinfo` → the store path hash, or a 400 naming what is wrong. */
export function parseNarInfoName(name: string): string {
  const hash = narInfoHashOf(name);
  if (hash === undefined) throw new BadRequestError('expected <hash>.narinfo');
  return hash;
}

/**
 * As parseNarInfoName, but undefined rather than a 400 for a name that is not `<...>.narinfo` at
 * all: another file at the cache root (`<hash>.ls`), for the narinfo routes to hand on.
 */
export function narInfoHashOf(name: string): string | undefined {
  const match = NARINFO_NAME.exec(name);
  if (!match) return undefined;
  if (!isStorePathHash(match[1])) throw new BadRequestError('invalid store path hash');
  return match[1];
}

export interface NarName {
  hash: string;
  compression: Compression;
  /** The storage key and URL path: `nar/<hash>.nar[.ext]`. */
  key: string;
}

/** `<hash>.nar[.ext]` → hash, compression and storage key, or a 400 naming what is wrong. */
export function parseNarName(name: string): NarName {
  const match = /^([^./]+)\.nar(?:\.([a-z0-9]+))?$/.exec(name);
  if (!match) throw new BadRequestError('expected <hash>.nar[.ext]');
  const [, hash, ext] = match;
  if (!isNarHashPart(hash) || !decodes(hash)) throw new BadRequestError('invalid NAR hash');
  const compression = compressionFromExtension(ext ?? '');
  if (compression === null) throw new BadRequestError(`unknown NAR extension .${ext}`);
  return { hash, compression, key: narKey(hash, compression) };
}

/**
 * 52 nix32 characters hold 260 bits, 4 more than a sha256: a name whose top character sets them
 * looks like a hash but is not one, and must be refused here rather than fail later as a 500.
 */
function decodes(hash: string): boolean {
  try {
    parseHash(`sha256:${hash}`);
    return true;
  } catch (e) {
    if (e instanceof NixFormatError) return false;
    throw e;
  }
}

export function narKey(hash: string, compression: Compression): string {
  const ext = narExtension(compression);
  return `nar/${hash}.nar${ext ? `.${ext}` : ''}`;
}
