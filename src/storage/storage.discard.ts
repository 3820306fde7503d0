import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/**
 * Consumes a source whose bytes are not needed because the object is already stored. Draining rather
 * than destroying matters when the source is an HTTP request body: destroying it resets the client's
 * connection before it reads our answer. A source failing now changes nothing: the object exists.
 */
export async function discard(source: Readable): Promise<void> {
  const sink = new Writable({
    write(_chunk, _encoding, callback) {
      callback();
    },
  });
  await pipeline(source, sink).catch(() => undefined);
}
