/**
 * HTTP/1.1 over a bare TCP socket, for requests no well-behaved client would send: wrong framing,
 * bodies that stop half-way, hang-ups at any point, bodies dribbled out slowly.
 *
 * ```ts
 * const res = await rawExchange(port, { head: 'PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\n',
 *                                       body: [Buffer.from('abc')], hangUpAfterBodyMs: 50 });
 * res.statuses  // [] : nothing came back before we left
 * ```
 */
import { Socket, connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export interface RawPlan {
  /** Request line and headers, ending with the blank line. */
  head: string;
  /** Body pieces, written one after the other (with `pieceDelayMs` between them). */
  body?: Buffer[];
  pieceDelayMs?: number;
  /** After the head and body are written: hang up after this many ms instead of waiting for the answer. */
  hangUpAfterBodyMs?: number;
  /** Hang up as soon as this many response bytes have arrived (mid-response). */
  hangUpAfterResponseBytes?: number;
  /** Give up (and record a timeout) when the server has neither answered nor closed by then. */
  timeoutMs?: number;
}

export interface RawResult {
  /** Status of every response received on the connection, in order (pipelined garbage gets its own). */
  statuses: number[];
  bytes: number;
  timedOut: boolean;
  /** The client left on purpose before the exchange ended. */
  hungUp: boolean;
}

// Anywhere, not only at a line start: a response's body need not end with a newline before the next one.
const STATUS_LINE = /HTTP\/1\.[01] (\d{3}) /g;

export function rawExchange(port: number, plan: RawPlan): Promise<RawResult> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const received: Buffer[] = [];
    let bytes = 0;
    let timedOut = false;
    let hungUp = false;
    let finished = false;
    const timer = setTimeout(() => {
      timedOut = true;
      socket.destroy();
    }, plan.timeoutMs ?? 20_000);
    const hangUp = () => {
      if (finished) return;
      hungUp = true;
      socket.destroy();
    };
    socket.on('data', (chunk: Buffer) => {
      received.push(chunk);
      bytes += chunk.length;
      if (plan.hangUpAfterResponseBytes !== undefined && bytes >= plan.hangUpAfterResponseBytes) hangUp();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      finished = true;
      clearTimeout(timer);
      // latin1: every byte maps to one character, so binary bodies cannot break the search.
      const text = Buffer.concat(received).toString('latin1');
      const statuses = [...text.matchAll(STATUS_LINE)].map((m) => Number(m[1]));
      resolve({ statuses, bytes, timedOut, hungUp });
    });
    socket.once('connect', () => {
      void (async () => {
        try {
          await write(socket, Buffer.from(plan.head, 'latin1'));
          for (const [i, piece] of (plan.body ?? []).entries()) {
            if (i > 0 && plan.pieceDelayMs) await sleep(plan.pieceDelayMs);
            if (socket.destroyed) return;
            await write(socket, piece);
          }
          if (plan.hangUpAfterBodyMs !== undefined) {
            await sleep(plan.hangUpAfterBodyMs);
            hangUp();
          }
        } catch {
          // The server closed first (it answered early, or refused the request): nothing to send to.
        }
      })();
    });
  });
}

function write(socket: Socket, data: Buffer): Promise<void> {
  return new Promise((done, fail) => {
    if (socket.destroyed) return fail(new Error('closed'));
    socket.write(data, (error) => (error ? fail(error) : done()));
  });
}
