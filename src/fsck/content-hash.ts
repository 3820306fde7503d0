import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** sha256 of a stream's bytes and how many there were, in bounded memory (chunk by chunk). */
export async function sha256Of(stream: Readable): Promise<{ digest: Buffer; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  await pipeline(
    stream,
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        hash.update(chunk);
        size += chunk.length;
        callback();
      },
    }),
  );
  return { digest: hash.digest(), size };
}
