import { NewNarInfo, ServedNarInfo } from 'src/database';
import { NarInfo, isCompression } from 'src/nix';

/** Database row → the narinfo as we serve it (without our signature, which is added on the way out). */
export function narInfoFromRow(row: ServedNarInfo): NarInfo {
  // Compression is validated before every write; anything else means the row was edited by hand.
  if (!isCompression(row.compression)) throw new Error(`narinfo of ${row.storePath} has unknown compression in the database`);
  return {
    storePath: row.storePath,
    url: row.url,
    compression: row.compression,
    fileHash: row.fileHash ?? undefined,
    fileSize: row.fileSize ?? undefined,
    narHash: row.narHash,
    narSize: row.narSize,
    references: row.refs === '' ? [] : row.refs.split(' '),
    deriver: row.deriver ?? undefined,
    system: row.system ?? undefined,
    sigs: row.sigs === '' ? [] : row.sigs.split('\n'),
    ca: row.ca ?? undefined,
  };
}

export interface RowOrigin {
  upstreamUrl?: string;
  upstreamNarUrl?: string;
  /** False when nothing vouches for the narinfo (an upstream allowed unsigned): we then never sign it. Default true. */
  verified?: boolean;
  now: number;
}

/** A narinfo (URL already in our scheme, our own signature removed) → a row to store. */
export function rowFromNarInfo(hash: string, info: NarInfo, origin: RowOrigin): NewNarInfo {
  return {
    hash,
    storePath: info.storePath,
    url: info.url,
    compression: info.compression,
    fileHash: info.fileHash ?? null,
    fileSize: info.fileSize ?? null,
    narHash: info.narHash,
    narSize: info.narSize,
    refs: info.references.join(' '),
    deriver: info.deriver ?? null,
    system: info.system ?? null,
    ca: info.ca ?? null,
    sigs: info.sigs.join('\n'),
    upstreamUrl: origin.upstreamUrl ?? null,
    upstreamNarUrl: origin.upstreamNarUrl ?? null,
    verified: origin.verified ?? true,
    createdAt: origin.now,
    lastAccessedAt: origin.now,
  };
}
