import { createCipheriv, createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';

export const MiB = 1024 * 1024;
const CHUNK = 64 * 1024;

export interface GeneratedOptions {
  /** Emit an error instead of the chunk that would pass this many bytes. */
  failAfter?: number;
  /** Pause between chunks, to keep a write in progress while readers poll. */
  delayMs?: number;
}

/**
 * Deterministic pseudo-random bytes (an AES-CTR keystream keyed by `seed`), produced chunk by chunk so
 * that multi-MB objects are never held in memory. The same seed always gives the same bytes.
 */
export function generated(seed: string, size: number, options: GeneratedOptions = {}): Readable {
  async function* chunks() {
    const key = createHash('sha256').update(seed).digest();
    const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
    const zeros = Buffer.alloc(CHUNK);
    for (let sent = 0; sent < size; sent += CHUNK) {
      const length = Math.min(CHUNK, size - sent);
      if (options.failAfter !== undefined && sent + length > options.failAfter) {
        throw new Error(`source failed on purpose after ${sent} bytes`);
      }
      if (options.delayMs) await sleep(options.delayMs);
      yield cipher.update(zeros.subarray(0, length));
    }
  }
  return Readable.from(chunks(), { objectMode: false });
}

export async function digest(stream: Readable): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of stream) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), size };
}

export function expectedDigest(seed: string, size: number): Promise<{ sha256: string; size: number }> {
  return digest(generated(seed, size));
}

/** Only for small results (range reads); whole objects are compared by digest. */
export async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Bytes start..end (inclusive) of `generated(seed, ...)`, keeping only that slice in memory. */
export async function expectedBytes(seed: string, start: number, end: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let offset = 0;
  for await (const chunk of generated(seed, end + 1)) {
    const buffer = chunk as Buffer;
    const from = Math.max(start - offset, 0);
    if (from < buffer.length) parts.push(buffer.subarray(from));
    offset += buffer.length;
  }
  return Buffer.concat(parts);
}
