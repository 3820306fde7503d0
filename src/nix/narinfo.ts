import { Compression, isCompression } from './compression';
import { NixFormatError } from './errors';
import { parseHash } from './hash';
import { isStorePath, isStorePathBaseName } from './store-path';

/**
 * One `<hash>.narinfo`. Hashes are `sha256:<nix32>` whatever encoding the source used; References and
 * Deriver are base names (`<hash>-<name>`) as written in the file; sigs keep their order.
 */
export interface NarInfo {
  storePath: string;
  /** Opaque and relative to the cache root; may carry a query string. */
  url: string;
  compression: Compression;
  fileHash?: string;
  fileSize?: number;
  narHash: string;
  narSize: number;
  references: string[];
  deriver?: string;
  system?: string;
  sigs: string[];
  ca?: string;
}

const SINGLE_VALUED = new Set([
  'StorePath',
  'URL',
  'Compression',
  'FileHash',
  'FileSize',
  'NarHash',
  'NarSize',
  'References',
  'Deriver',
  'System',
  'CA',
]);

/** Nix's spelling of "no deriver" (what `nix-store -q --deriver` prints); some caches write it out. */
const UNKNOWN_DERIVER = 'unknown-deriver';

export function parseNarInfo(text: string): NarInfo {
  const { fields, sigs } = splitFields(text);
  const required = (key: string): string => {
    const value = fields.get(key);
    if (value === undefined) throw new NixFormatError(`narinfo lacks ${key}`);
    return value;
  };

  const storePath = required('StorePath');
  if (!isStorePath(storePath)) throw invalid('StorePath', 'is not a valid store path');
  const url = required('URL');
  if (url === '') throw invalid('URL', 'is empty');
  // Absent (or empty, which Nix treats the same) means bzip2: the default of the oldest caches.
  const compression = fields.get('Compression') || 'bzip2';
  if (!isCompression(compression)) throw invalid('Compression', `'${compression}' is not supported`);
  const references = (fields.get('References') ?? '').split(' ').filter((ref) => ref !== '');
  if (!references.every(isStorePathBaseName)) throw invalid('References', 'contains an invalid store path');

  const info: NarInfo = {
    storePath,
    url,
    compression,
    narHash: normaliseHash('NarHash', required('NarHash')),
    narSize: parseCount('NarSize', required('NarSize'), 1),
    references,
    sigs,
  };
  const fileHash = fields.get('FileHash');
  if (fileHash !== undefined) info.fileHash = normaliseHash('FileHash', fileHash);
  const fileSize = fields.get('FileSize');
  if (fileSize !== undefined) info.fileSize = parseCount('FileSize', fileSize, 0);
  const deriver = fields.get('Deriver');
  if (deriver !== undefined && deriver !== UNKNOWN_DERIVER) {
    if (!isStorePathBaseName(deriver)) throw invalid('Deriver', 'is not a valid store path');
    info.deriver = deriver;
  }
  // Nix writes neither an empty System nor an empty CA, and reads them as absent.
  const system = fields.get('System');
  if (system) info.system = system;
  const ca = fields.get('CA');
  if (ca) info.ca = ca;
  return info;
}

function splitFields(text: string): { fields: Map<string, string>; sigs: string[] } {
  // A CR would end up inside opaque values such as URL; Nix never writes one.
  if (text.includes('\r')) throw new NixFormatError('narinfo contains a carriage return');
  const fields = new Map<string, string>();
  const sigs: string[] = [];
  const lines = text.split('\n');
  // Nix ends every line in '\n'; a missing final one is tolerated because we re-serialise anyway.
  if (lines[lines.length - 1] === '') lines.pop();
  lines.forEach((line, index) => {
    const colon = line.indexOf(':');
    if (colon <= 0 || line[colon + 1] !== ' ') {
      throw new NixFormatError(`narinfo line ${index + 1} is not 'Key: value'`);
    }
    const key = line.slice(0, colon);
    const value = line.slice(colon + 2);
    if (key === 'Sig') {
      if (value === '') throw invalid('Sig', 'is empty');
      sigs.push(value);
    } else if (SINGLE_VALUED.has(key)) {
      if (fields.has(key)) throw new NixFormatError(`narinfo has more than one ${key}`);
      fields.set(key, value);
    } // other keys are ignored, as by Nix, so that caches can add fields
  });
  return { fields, sigs };
}

function invalid(key: string, reason: string): NixFormatError {
  return new NixFormatError(`narinfo ${key} ${reason}`);
}

function normaliseHash(key: string, value: string): string {
  try {
    return parseHash(value).toNix32String();
  } catch (err) {
    throw invalid(key, `is invalid: ${(err as Error).message}`);
  }
}

/** Plain decimal only (no sign, exponent or leading zeros), as Nix writes it. */
function parseCount(key: string, value: string, min: number): number {
  const n = Number(value);
  if (!/^(0|[1-9][0-9]*)$/.test(value) || !Number.isSafeInteger(n) || n < min) {
    throw invalid(key, min > 0 ? 'is not a positive integer' : 'is not a non-negative integer');
  }
  return n;
}

/** Writes Nix's key order, every line ending in '\n'; `References: ` stays even when empty, as Nix writes it. */
export function serializeNarInfo(info: NarInfo): string {
  const lines = [`StorePath: ${info.storePath}`, `URL: ${info.url}`, `Compression: ${info.compression}`];
  // Hashes are re-rendered so that a NarInfo built from any encoding is served as nix32.
  if (info.fileHash !== undefined) lines.push(`FileHash: ${parseHash(info.fileHash).toNix32String()}`);
  if (info.fileSize !== undefined) lines.push(`FileSize: ${info.fileSize}`);
  lines.push(`NarHash: ${parseHash(info.narHash).toNix32String()}`, `NarSize: ${info.narSize}`);
  lines.push(`References: ${info.references.join(' ')}`);
  if (info.deriver !== undefined) lines.push(`Deriver: ${info.deriver}`);
  if (info.system !== undefined) lines.push(`System: ${info.system}`);
  for (const sig of info.sigs) lines.push(`Sig: ${sig}`);
  if (info.ca !== undefined) lines.push(`CA: ${info.ca}`);
  return lines.map((line) => `${line}\n`).join('');
}
