import { Readable, Transform, pipeline } from 'node:stream';

/**
 * `source` as it flows, with `count(bytes)` called for every chunk that passes. Errors and early
 * destruction travel both ways (pipeline), so a reader that goes away still stops the source, and a
 * source that fails still fails the reader.
 */
export function meteredStream(source: Readable, count: (bytes: number) => void): Readable {
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      count(chunk.length);
      done(null, chunk);
    },
  });
  // The callback only silences the pipeline's own rejection: whoever reads `meter` sees the error.
  return pipeline(source, meter, () => undefined);
}
