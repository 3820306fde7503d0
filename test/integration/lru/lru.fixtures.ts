import { createHash, randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { Readable } from 'node:stream';
import { NIX32_ALPHABET, nix32Encode, serializeNarInfo } from 'src/nix';

/** An uploaded NAR: its bytes and its URL path, named by the nix32 SHA-256 of the bytes as Nix names uploads. */
export interface TestNar {
  body: Buffer;
  url: string;
  sha256: string;
}

export function makeNar(size: number): TestNar {
  const body = randomBytes(size);
  const digest = createHash('sha256').update(body).digest();
  return { body, url: `nar/${nix32Encode(digest)}.nar`, sha256: `sha256:${nix32Encode(digest)}` };
}

/** A fresh store path hash (32 nix32 characters). */
export function makeStorePathHash(): string {
  return [...randomBytes(32)].map((byte) => NIX32_ALPHABET[byte % 32]).join('');
}

async function put(url: string, body: Buffer | string): Promise<void> {
  const res = await fetch(url, { method: 'PUT', body });
  if (res.status !== 204) throw new Error(`PUT ${url}: ${res.status} ${await res.text()}`);
}

export function putNar(base: string, nar: TestNar): Promise<void> {
  return put(`${base}/${nar.url}`, nar.body);
}

/** Uploads a narinfo for a new store path pointing at `nar` (uploaded or not); returns its hash. */
export async function putNarInfo(base: string, nar: TestNar, hash = makeStorePathHash()): Promise<string> {
  const text = serializeNarInfo({
    storePath: `/nix/store/${hash}-lru-test`,
    url: nar.url,
    compression: 'none',
    fileHash: nar.sha256,
    fileSize: nar.body.length,
    narHash: nar.sha256,
    narSize: nar.body.length,
    references: [],
    sigs: [],
  });
  await put(`${base}/${hash}.narinfo`, text);
  return hash;
}

/** Uploads a NAR and a narinfo pointing at it (what `nix copy` does for one path); returns the narinfo hash. */
export async function uploadPath(base: string, nar: TestNar): Promise<string> {
  await putNar(base, nar);
  return putNarInfo(base, nar);
}

export async function status(url: string): Promise<number> {
  const res = await fetch(url);
  await res.arrayBuffer();
  return res.status;
}

/**
 * A client reading a NAR as slowly as it likes: it takes the first chunk, then reads nothing until
 * `resume()`, so the server's read of the stored object stays open (the NAR must be much larger than
 * the socket buffers between them, several MiB each on loopback).
 */
export class SlowReader {
  private readonly chunks: Buffer[] = [];
  private response?: Readable;
  readonly done: Promise<Buffer>;
  /** Epoch ms when the last byte arrived. */
  finishedAt = 0;
  private readonly started: Promise<void>;

  constructor(url: string) {
    let started!: () => void;
    let failed!: (e: Error) => void;
    this.started = new Promise<void>((resolve, reject) => {
      started = resolve;
      failed = reject;
    });
    this.done = new Promise<Buffer>((resolve, reject) => {
      const req = request(url, (res) => {
        if (res.statusCode !== 200) {
          const e = new Error(`GET ${url}: ${res.statusCode}`);
          failed(e);
          reject(e);
          return;
        }
        this.response = res;
        res.once('data', (chunk: Buffer) => {
          this.chunks.push(chunk);
          res.pause();
          started();
        });
        res.once('end', () => {
          this.finishedAt = Date.now();
          resolve(Buffer.concat(this.chunks));
        });
        res.once('error', reject);
      });
      req.once('error', (e) => {
        failed(e);
        reject(e);
      });
      req.end();
    });
    // Observed through `started` and `done`; these keep an early failure from being unhandled twice.
    this.started.catch(() => undefined);
    this.done.catch(() => undefined);
  }

  /** Resolves once the first bytes arrived and reading paused. */
  firstBytes(): Promise<void> {
    return this.started;
  }

  resume(): void {
    this.response?.on('data', (chunk: Buffer) => this.chunks.push(chunk));
    this.response?.resume();
  }
}

export const sha256Of = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');
