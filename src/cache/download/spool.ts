import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { randomUUID } from 'node:crypto';

export interface SpooledFile {
  path: string;
  size: number;
  sha256: Buffer;
  remove(): Promise<void>;
}

export class SpoolLimitError extends Error {}

/**
 * Streams `source` into a new file under `dir`, hashing as it goes, so the bytes can be verified
 * before anything becomes visible in storage. The file is removed if spooling fails.
 */
export async function spoolToTempFile(source: Readable, dir: string, maxBytes = Infinity): Promise<SpooledFile> {
  await mkdir(dir, { recursive: true });
  const path = join(dir, `ncps-${randomUUID()}.tmp`);
  const hash = createHash('sha256');
  let size = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      size += chunk.length;
      if (size > maxBytes) return done(new SpoolLimitError(`body larger than ${maxBytes} bytes`));
      hash.update(chunk);
      done(null, chunk);
    },
  });
  const remove = () => rm(path, { force: true });
  try {
    await pipeline(source, meter, createWriteStream(path));
  } catch (e) {
    await remove();
    throw e;
  }
  return { path, size, sha256: hash.digest(), remove };
}
