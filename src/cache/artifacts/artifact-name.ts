import { BadRequestError } from 'src/common/errors';
import { isStorePathBaseName, isStorePathHash } from 'src/nix';

/**
 * The files a binary cache serves besides narinfos and NARs:
 * - `listing`: `<hash>.ls`, the JSON file listing of a store path's NAR (`write-nar-listing=true`;
 *   nix-index, `nix store ls`);
 * - `log`: `log/<store path base name>`, a build log (`nix store copy-log`, read by `nix log`);
 * - `realisation`: `realisations/sha256:<hex>!<output>.doi`, a content-addressed derivation output
 *   (Nix up to 2.33);
 * - `build-trace`: `build-trace-v2/<drv base name>/<output>.doi`, the same from Nix 2.34 on;
 * - `debuginfo`: `debuginfo/<build-id>`, a pointer into a NAR for dwarffs (`index-debug-info=true`).
 */
export type ArtifactKind = 'listing' | 'log' | 'realisation' | 'build-trace' | 'debuginfo';

export interface ArtifactName {
  kind: ArtifactKind;
  /** The request path without the leading slash (and without /upload/): the row's key. */
  path: string;
  /** Where the bytes live in storage: a safe key under a directory of their own, never under nar/. */
  storageKey: string;
  /** The store path hash a `.ls` describes: it is evicted with that narinfo. Null for the others. */
  narInfoHash: string | null;
  /** What the file is, served as its Content-Type (the Content-Encoding is the stored one). */
  contentType: string;
}

const JSON_TYPE = 'application/json';
const LOG_TYPE = 'text/plain; charset=utf-8';

/** An output name: Nix's store path name characters, starting with a letter or digit. */
const OUTPUT_NAME = /^[A-Za-z0-9][A-Za-z0-9+\-._?=]{0,210}$/;
const REALISATION_ID = /^sha256:([0-9a-f]{64})!(.+)\.doi$/;
/**
 * GNU build ids are 20 bytes (SHA-1) in practice; other lengths exist, all hex. Nix 2.8 writes
 * `debuginfo/<build id>.debug` (the file name under lib/debug/.build-id), dwarffs asks without it.
 */
const BUILD_ID = /^[0-9a-f]{8,128}(?:\.debug)?$/;
/** Longest storage key segment: within the 255 bytes of common file systems, with room to spare. */
const MAX_SEGMENT = 240;

/** `<hash>.ls` (the last path segment, as the narinfo routes see it). */
export function listingName(name: string): ArtifactName {
  const hash = name.endsWith('.ls') ? name.slice(0, -3) : '';
  if (!isStorePathHash(hash)) throw new BadRequestError('expected <hash>.ls with a store path hash');
  return { kind: 'listing', path: name, storageKey: `ls/${name}`, narInfoHash: hash, contentType: JSON_TYPE };
}

/** `log/<base name>`: the log of a derivation, or of the path it built (both are asked for by `nix log`). */
export function logName(name: string): ArtifactName {
  if (!isStorePathBaseName(name)) throw new BadRequestError('expected log/<store path base name>');
  return artifact('log', `log/${name}`, `log/${segment(name)}`, LOG_TYPE);
}

/** `realisations/sha256:<64 hex>!<output>.doi`. */
export function realisationName(name: string): ArtifactName {
  const match = REALISATION_ID.exec(name);
  if (!match || !OUTPUT_NAME.test(match[2])) throw new BadRequestError('expected realisations/sha256:<hex>!<output>.doi');
  return artifact('realisation', `realisations/${name}`, `realisations/sha256-${match[1]}/${segment(match[2])}.doi`, JSON_TYPE);
}

/** `build-trace-v2/<drv base name>/<output>.doi`. */
export function buildTraceName(drv: string, output: string): ArtifactName {
  const out = output.endsWith('.doi') ? output.slice(0, -4) : '';
  if (!isStorePathBaseName(drv) || !OUTPUT_NAME.test(out)) {
    throw new BadRequestError('expected build-trace-v2/<derivation base name>/<output>.doi');
  }
  return artifact('build-trace', `build-trace-v2/${drv}/${output}`, `build-trace-v2/${segment(drv)}/${segment(out)}.doi`, JSON_TYPE);
}

/** `debuginfo/<build-id>[.debug]` (lower-case hex, as Nix writes it). */
export function debugInfoName(name: string): ArtifactName {
  if (!BUILD_ID.test(name)) throw new BadRequestError('expected debuginfo/<hex build id>[.debug]');
  return artifact('debuginfo', `debuginfo/${name}`, `debuginfo/${name}`, JSON_TYPE);
}

function artifact(kind: ArtifactKind, path: string, storageKey: string, contentType: string): ArtifactName {
  return { kind, path, storageKey, narInfoHash: null, contentType };
}

/**
 * A name as a storage key segment: characters storage keys do not allow (`+ ? =`), and `_` itself,
 * become `_` and two hex digits, so distinct names never share a key. Names here start with a
 * letter or digit, as storage keys must.
 */
function segment(name: string): string {
  const escaped = name.replace(/[^A-Za-z0-9.-]/g, (c) => `_${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  if (escaped.length > MAX_SEGMENT) throw new BadRequestError('name too long');
  return escaped;
}
