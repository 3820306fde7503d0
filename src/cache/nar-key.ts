import { createHash } from 'node:crypto';
import { Compression, NarInfo, nix32Encode, parseHash } from 'src/nix';
import { narKey } from './nar-name';

/**
 * Our storage key (and URL) for the NAR file of an upstream narinfo.
 *
 * - Uncompressed: named by NarHash, the hash of the file itself, which its bytes are checked
 *   against (a FileHash, which the upstream signature does not cover, is not trusted over it).
 * - Compressed, FileHash known: named by it, as Nix does. The bytes are checked against it, so the
 *   name is self-certifying: nobody can store other bytes under it.
 * - Compressed, no FileHash: never by NarHash — that name would be a claim nobody checks against the
 *   file's bytes, and another narinfo (claiming the same NarHash with other bytes) could take it. The
 *   name is SHA3-256 over a domain-separation prefix, the store path hash, the NarHash and the
 *   compression: one narinfo's own, which no other narinfo can reach (the store path hash is the
 *   narinfo's identity), and whose bytes are checked to decompress to its NarHash before they are
 *   stored. A different hash function (not sha256 over a prefix) keeps it apart from FileHash names:
 *   a FileHash name is sha256(file) for bytes the upstream chooses, so with sha256 an upstream could
 *   serve a file consisting of exactly our prefix and inputs, and its FileHash name would equal ours.
 *   Matching a SHA3-256 output with the sha256 of some file needs a sha256 preimage.
 *   The shape stays `nar/<52 nix32 chars>.nar.<ext>`, like every NAR URL.
 */
export function narKeyFor(storePathHash: string, info: Pick<NarInfo, 'fileHash' | 'narHash' | 'compression'>): string {
  const narHash = parseHash(info.narHash);
  if (info.compression === 'none') return narKey(nix32Encode(narHash.digest), 'none');
  if (info.fileHash) return narKey(nix32Encode(parseHash(info.fileHash).digest), info.compression);
  return narKey(nix32Encode(derivedNarName(storePathHash, narHash.digest, info.compression)), info.compression);
}

function derivedNarName(storePathHash: string, narHash: Buffer, compression: Compression): Buffer {
  return createHash('sha3-256')
    .update('ncps: compressed NAR without FileHash, v1\0')
    .update(`${storePathHash}\0${compression}\0`)
    .update(narHash)
    .digest();
}
