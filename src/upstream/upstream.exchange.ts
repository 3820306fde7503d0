import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { UpstreamUnavailableError } from './upstream.errors';

/** An upstream's answer as undici delivered it: status, headers (names in lower case) and the body to read or drain. */
export interface UpstreamResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: UpstreamBody;
}

/** What an exchange needs to explain its failures: who it is for, and the budgets it ran under. */
export interface ExchangeLimits {
  label: string;
  dialTimeoutMs: number;
  headerTimeoutMs: number;
  bodyIdleTimeoutMs: number;
}

/** Room for a few socket reads before the exchange is paused: the connection is not paused and resumed around every chunk. */
const BODY_BUFFER_BYTES = 256 * 1024;

/**
 * A response body fed by the exchange, chunk by chunk, without a copy or a stream in between. It
 * pauses the connection when its reader is behind, and errors (with an UpstreamUnavailableError),
 * rather than ends, when the connection breaks before the end. Destroying it aborts the exchange.
 */
export class UpstreamBody extends Readable {
  /** True once the whole body arrived. */
  complete = false;

  constructor(private readonly controller: Dispatcher.DispatchController) {
    super({ highWaterMark: BODY_BUFFER_BYTES });
  }

  override _read(): void {
    if (this.controller.paused) this.controller.resume();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.complete && !this.controller.aborted) this.controller.abort(error ?? new Error('body dropped'));
    callback(error);
  }
}

/**
 * Runs one GET through an undici dispatcher, resolving with the response once its headers arrived.
 * `received` hears of the body's bytes as they arrive; `settled` is called once, when the exchange is
 * over whichever way (body read, dropped or broken, or no answer).
 */
export function exchange(
  dispatcher: Dispatcher,
  request: Dispatcher.DispatchOptions,
  limits: ExchangeLimits,
  received: (bytes: number) => void,
  settled: () => void,
): Promise<UpstreamResponse> {
  return new Promise((resolve, reject) => {
    let body: UpstreamBody | undefined;
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      settled();
    };
    const handler: Dispatcher.DispatchHandler = {
      // Present so that undici takes this for a handler of its current interface.
      onRequestStart: () => undefined,
      onResponseStart(controller, status, headers) {
        body = new UpstreamBody(controller);
        body.once('close', finish);
        resolve({ status, headers, body });
      },
      onResponseData(controller, chunk) {
        received(chunk.length);
        if (body?.push(chunk) === false) controller.pause();
      },
      onResponseEnd() {
        if (body) {
          body.complete = true;
          body.push(null);
        }
        finish();
      },
      onResponseError(_controller, error) {
        const failure = toUpstreamError(error, limits, body !== undefined);
        if (body) body.destroy(failure);
        else reject(failure);
        finish();
      },
    };
    dispatcher.dispatch(request, handler);
  });
}

/** A response header's value (the first, if the upstream sent it several times). */
export function header(res: UpstreamResponse, name: string): string | undefined {
  const value: string | string[] | undefined = res.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** undici's failures as the rest of ncps knows them: a reason, and the system code that decides on a retry. */
export function toUpstreamError(error: Error, limits: ExchangeLimits, answered: boolean): UpstreamUnavailableError {
  if (error instanceof UpstreamUnavailableError) return error;
  const { label } = limits;
  const code = (error as NodeJS.ErrnoException).code;
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
      return new UpstreamUnavailableError(`upstream ${label}: no connection within ${limits.dialTimeoutMs} ms`, 'timeout');
    case 'UND_ERR_HEADERS_TIMEOUT':
      return new UpstreamUnavailableError(`upstream ${label}: no response headers within ${limits.headerTimeoutMs} ms`, 'timeout');
    case 'UND_ERR_BODY_TIMEOUT':
      return new UpstreamUnavailableError(`upstream ${label}: body stalled for ${limits.bodyIdleTimeoutMs} ms`, 'timeout');
    case 'UND_ERR_SOCKET':
      // The connection closed under the exchange: before the answer it is what a reused keep-alive
      // connection closed by the upstream looks like (worth a retry, as a reset is); after, the body is short.
      return answered
        ? truncated(label)
        : new UpstreamUnavailableError(`upstream ${label}: connection closed before the answer`, 'network', undefined, 'ECONNRESET');
  }
  if (answered) return truncated(label, error);
  // Node's and undici's messages name the address (`connect ECONNREFUSED 127.0.0.1:80`), never credentials.
  return new UpstreamUnavailableError(`upstream ${label}: ${error.message}`, 'network', undefined, code);
}

/** A body that ended short: worth another try for a small document, a failed download for a NAR. */
export function truncated(label: string, cause?: unknown): UpstreamUnavailableError {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  return new UpstreamUnavailableError(
    `upstream ${label}: connection closed before the end of the body${code ? ` (${code})` : ''}`,
    'truncated',
    undefined,
    code,
  );
}
