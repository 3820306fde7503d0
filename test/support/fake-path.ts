import { createHash, randomBytes } from 'node:crypto';
import { NarInfo, nix32Encode, serializeNarInfo } from 'src/nix';

export interface FakePath {
  /** The store path's hash part (what /<hash>.narinfo is asked by). */
  hash: string;
  info: NarInfo;
  /** `info` serialized, unsigned. */
  narinfo: string;
  /** The nix32 SHA-256 of the NAR, which names it. */
  narName: string;
  /** Where the narinfo's URL points, as a route: /nar/<narName>.nar. */
  narPath: string;
  nar: Buffer;
}

/** A store path of `size` random bytes as an unsigned upstream offers it: narinfo and uncompressed NAR. */
export function fakePath(name: string, size: number, hash = nix32Encode(randomBytes(20))): FakePath {
  const nar = randomBytes(size);
  const narName = nix32Encode(createHash('sha256').update(nar).digest());
  const info: NarInfo = {
    storePath: `/nix/store/${hash}-${name}`,
    url: `nar/${narName}.nar`,
    compression: 'none',
    fileHash: `sha256:${narName}`,
    fileSize: size,
    narHash: `sha256:${narName}`,
    narSize: size,
    references: [],
    sigs: [],
  };
  return { hash, info, narinfo: serializeNarInfo(info), narName, narPath: `/nar/${narName}.nar`, nar };
}

/** A promise the test resolves when it wants: holds an upstream answer back. */
export function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}
