/**
 * The upstream of the miss measurements: an in-process binary cache answering from memory, as fast as
 * Node can, plus one NAR generated on the fly (for the memory figure: never held whole anywhere).
 */
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { Server, createServer } from 'node:http';
import { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { NarInfo, SecretKey, generateKeyPair, nix32Encode, serializeNarInfo, signedOnlyBy } from 'src/nix';

export const sha256 = (data: Buffer): Buffer => createHash('sha256').update(data).digest();
export const storePathHash = (): string => nix32Encode(randomBytes(20));

/** A narinfo as `nix copy` writes it for an uncompressed NAR, signed by `key`. */
export function narInfo(
  key: SecretKey,
  hash: string,
  name: string,
  nar: { hash: string; size: number },
  references: string[] = [],
): string {
  const info: NarInfo = {
    storePath: `/nix/store/${hash}-${name}`,
    url: `nar/${nar.hash}.nar`,
    compression: 'none',
    fileHash: `sha256:${nar.hash}`,
    fileSize: nar.size,
    narHash: `sha256:${nar.hash}`,
    narSize: nar.size,
    references,
    sigs: [],
  };
  return serializeNarInfo(signedOnlyBy(info, key));
}

const GENERATED_CHUNK = 1024 * 1024;

/**
 * `size` pseudo-random bytes, the same on every call (AES-256-CTR over zeros, ~1 GB/s), in fresh
 * 1 MiB chunks: what an upstream sends, without ever being in memory as a whole.
 */
function* generatedChunks(seed: string, size: number): Generator<Buffer> {
  const cipher = createCipheriv('aes-256-ctr', createHash('sha256').update(seed).digest(), Buffer.alloc(16));
  const zeros = Buffer.alloc(GENERATED_CHUNK);
  for (let sent = 0; sent < size; sent += GENERATED_CHUNK) yield cipher.update(zeros.subarray(0, Math.min(GENERATED_CHUNK, size - sent)));
}

export interface MissPath {
  hash: string;
  narPath: string;
  narHash: string;
  size: number;
}

export class Upstream {
  readonly key = generateKeyPair('bench-upstream-1');
  private readonly files = new Map<string, Buffer>([
    ['/nix-cache-info', Buffer.from('StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n')],
  ]);
  private readonly generated = new Map<string, { seed: string; size: number }>();
  private server?: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      const body = this.files.get(path);
      if (body) {
        res.writeHead(200, { 'content-length': body.length }).end(body);
        return;
      }
      const generated = this.generated.get(path);
      if (generated) {
        res.writeHead(200, { 'content-length': generated.size });
        Readable.from(generatedChunks(generated.seed, generated.size), { objectMode: false }).pipe(res);
        return;
      }
      res.writeHead(404).end();
    }).listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    this.server?.close();
  }

  /** A fresh store path whose random NAR is held in memory until `forget`. */
  addPath(name: string, nar: Buffer): MissPath {
    const narHash = nix32Encode(sha256(nar));
    const path = this.publish(name, narHash, nar.length);
    this.files.set(path.narPath, nar);
    return path;
  }

  /**
   * A fresh store path whose NAR is generated as it is sent. Its hash takes one pass of the generator
   * first (a few seconds per GiB).
   */
  addGeneratedPath(name: string, size: number): MissPath {
    const seed = `ncps-bench-${name}-${randomBytes(8).toString('hex')}`;
    const hash = createHash('sha256');
    for (const chunk of generatedChunks(seed, size)) hash.update(chunk);
    const path = this.publish(name, nix32Encode(hash.digest()), size);
    this.generated.set(path.narPath, { seed, size });
    return path;
  }

  forget(path: MissPath): void {
    this.files.delete(`/${path.hash}.narinfo`);
    this.files.delete(path.narPath);
    this.generated.delete(path.narPath);
  }

  private publish(name: string, narHash: string, size: number): MissPath {
    const hash = storePathHash();
    this.files.set(`/${hash}.narinfo`, Buffer.from(narInfo(this.key.secretKey, hash, name, { hash: narHash, size })));
    return { hash, narPath: `/nar/${narHash}.nar`, narHash, size };
  }
}
