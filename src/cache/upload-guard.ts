import { Readable, Transform } from 'node:stream';
import { Clock, Timer } from 'src/common/clock';
import { PayloadTooLargeError, RequestTimeoutError } from 'src/common/errors';

export interface UploadLimits {
  /** Most bytes the body may have. */
  maxBytes: number;
  /** Longest silence of the client while we wait for more of its body. */
  idleMs: number;
}

/**
 * An upload body as seen by the code that stores it, with its limits enforced while it arrives: the
 * byte past `maxBytes` fails it with 413, a client silent for `idleMs` fails it with 408. The body is
 * piped, not pipelined, into the returned stream, so a failure there leaves the request itself
 * intact and the error can still be answered (an abort by the client does fail it). The idle time
 * is kept on `clock`.
 */
export function guardUpload(body: Readable, limits: UploadLimits, clock: Clock): Readable {
  let received = 0;
  const guard = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      received += chunk.length;
      if (received > limits.maxBytes) return done(new PayloadTooLargeError(`NAR larger than ${limits.maxBytes} bytes`));
      timer.refresh();
      done(null, chunk);
    },
    destroy(error, done) {
      timer.cancel();
      body.unpipe(guard);
      done(error);
    },
    flush(done) {
      timer.cancel();
      done();
    },
  });
  const timer: Timer = clock.setTimeout(function idle() {
    // Bytes waiting on our side (storage slower than the client) are not the client's silence.
    if (guard.readableLength >= guard.readableHighWaterMark) return timer.refresh();
    guard.destroy(new RequestTimeoutError(`no upload data for ${limits.idleMs} ms`));
  }, limits.idleMs);
  timer.unref();
  body.once('error', (e) => guard.destroy(e));
  body.once('close', () => {
    // An HTTP request that arrived whole may close before it is read to the end; its bytes remain.
    const complete = (body as { complete?: boolean }).complete === true;
    if (!body.readableEnded && !complete) guard.destroy(new Error('the client closed the upload before its end'));
  });
  body.pipe(guard);
  return guard;
}
