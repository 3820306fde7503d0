import { randomBytes } from 'node:crypto';
import { NewNarFile, NewNarInfo } from 'src/database';

const NIX32 = '0123456789abcdfghijklmnpqrsvwxyz';

/** A random 32-character nix32 store path hash. */
export function randomHash(): string {
  return Array.from(randomBytes(32), (b) => NIX32[b % 32]).join('');
}

/** A narinfo row with every field set; `overrides` replaces some. */
export function narinfo(overrides: Partial<NewNarInfo> = {}): NewNarInfo {
  const hash = overrides.hash ?? randomHash();
  return {
    hash,
    storePath: `/nix/store/${hash}-hello-2.12.1`,
    url: `nar/${randomHash()}${randomHash()}.nar.xz`,
    compression: 'xz',
    fileHash: `sha256:${randomHash()}${randomHash().slice(0, 20)}`,
    fileSize: 50_264,
    narHash: `sha256:${randomHash()}${randomHash().slice(0, 20)}`,
    narSize: 226_560,
    refs: `${randomHash()}-glibc-2.38 ${hash}-hello-2.12.1`,
    deriver: `${randomHash()}-hello-2.12.1.drv`,
    system: 'x86_64-linux',
    ca: null,
    sigs: 'cache.nixos.org-1:rC2xqHKhnvBePOFbR2Ji1HRzrXdCXqM3qE5KqyJvXp3fXoTGTFaIYjvyl4bfRWCnaxUqXZ1cNhxGq2EqS5LTDw==',
    upstreamUrl: 'https://cache.nixos.org',
    upstreamNarUrl: `nar/${randomHash()}.nar.xz?hash=${hash}`,
    verified: true,
    createdAt: 1_764_000_000_000,
    lastAccessedAt: 1_764_000_000_000,
    ...overrides,
  };
}

/** A nar_files row; `overrides` replaces some fields. */
export function narFile(overrides: Partial<NewNarFile> = {}): NewNarFile {
  return {
    key: `nar/${randomHash()}${randomHash()}.nar.zst`,
    compression: 'zstd',
    fileSize: 123_456,
    fileHash: `sha256:${randomHash()}${randomHash().slice(0, 20)}`,
    createdAt: 1_764_000_000_000,
    lastAccessedAt: 1_764_000_000_000,
    ...overrides,
  };
}
