/**
 * The upstream of the miss measurements: a binary cache answering from memory, as fast as Node can,
 * plus one NAR generated on the fly (for the memory figure: never held whole anywhere). It runs in a
 * child process of its own (upstream-server.ts) on the clients' CPU, as a real upstream is a process
 * of its own: in the bench's process its sends would wait for the client's work and garbage
 * collections, and the other way round. This side makes the paths (and signs them) and hands the
 * child their files over HTTP (PUT, DELETE) before they are asked for.
 */
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { Agent, request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { NarInfo, SecretKey, generateKeyPair, nix32Encode, serializeNarInfo, signedOnlyBy } from 'src/nix';
import { Child, freePort, startPinned, stop, waitUntilUp } from './processes';

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

/** Request headers that make a PUT register a generated file instead of storing its body. */
export const GENERATE_SEED = 'x-generate-seed';
export const GENERATE_SIZE = 'x-generate-size';
/** POST `${RANDOM_NAR}?size=N`: the child makes N random bytes its NAR, answering their sha256 (hex). */
export const RANDOM_NAR = '/_random-nar';

export const narPathOf = (narHash: string): string => `/nar/${narHash}.nar`;

/**
 * `size` pseudo-random bytes, the same on every call (AES-256-CTR over zeros, ~1 GB/s), in fresh
 * 1 MiB chunks: what an upstream sends, without ever being in memory as a whole.
 */
export function* generatedChunks(seed: string, size: number): Generator<Buffer> {
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
  private readonly control = new Agent({ keepAlive: true });
  private child?: Child;
  url = '';

  /** `cpu`: what the child is pinned to (taskset list). */
  constructor(private readonly cpu: string) {}

  async start(): Promise<void> {
    const port = await freePort();
    this.url = `http://127.0.0.1:${port}`;
    this.child = startPinned(this.cpu, process.execPath, [join(__dirname, 'upstream-server.js'), String(port)]);
    try {
      await waitUntilUp(`${this.url}/nix-cache-info`, this.child);
    } catch (e) {
      await this.close();
      throw e;
    }
  }

  async close(): Promise<void> {
    if (this.child) await stop(this.child);
    this.control.destroy();
  }

  /**
   * A fresh store path whose NAR, `size` random bytes, the upstream makes and holds in memory until
   * `forget`: the bench's process never holds it (its garbage would be collected while it measures).
   */
  async addRandomPath(name: string, size: number): Promise<MissPath> {
    const digest = Buffer.from(await this.send('POST', `${RANDOM_NAR}?size=${size}`), 'hex');
    return this.publish(name, nix32Encode(digest), size);
  }

  /**
   * A fresh store path whose NAR the upstream generates as it sends it. Its hash takes one pass of
   * the generator here first (a few seconds per GiB).
   */
  async addGeneratedPath(name: string, size: number): Promise<MissPath> {
    const seed = `ncps-bench-${name}-${randomBytes(8).toString('hex')}`;
    const hash = createHash('sha256');
    for (const chunk of generatedChunks(seed, size)) hash.update(chunk);
    const path = await this.publish(name, nix32Encode(hash.digest()), size);
    await this.send('PUT', path.narPath, undefined, { [GENERATE_SEED]: seed, [GENERATE_SIZE]: String(size) });
    return path;
  }

  async forget(path: MissPath): Promise<void> {
    await this.send('DELETE', `/${path.hash}.narinfo`);
    await this.send('DELETE', path.narPath);
  }

  private async publish(name: string, narHash: string, size: number): Promise<MissPath> {
    const hash = storePathHash();
    await this.send('PUT', `/${hash}.narinfo`, Buffer.from(narInfo(this.key.secretKey, hash, name, { hash: narHash, size })));
    return { hash, narPath: narPathOf(narHash), narHash, size };
  }

  /** Resolves with the answer's body (text), once the child said 200 or 204. */
  private send(method: 'PUT' | 'POST' | 'DELETE', path: string, body?: Buffer, headers: Record<string, string> = {}): Promise<string> {
    return new Promise((resolve, reject) => {
      const req = httpRequest(`${this.url}${path}`, { method, agent: this.control, headers }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
        res.on('end', () =>
          res.statusCode === 200 || res.statusCode === 204
            ? resolve(text)
            : reject(new Error(`upstream ${method} ${path}: ${res.statusCode} ${text}`)),
        );
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  }
}
