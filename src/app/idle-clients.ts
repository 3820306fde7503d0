import { Server } from 'node:http';
import { Socket } from 'node:net';
import { Connections } from './connections';

/** What a connection looks like when it has been silent (nothing read, nothing written) for the idle timeout. */
export interface SilentConnection {
  /** A request is being answered on it. */
  requestInFlight: boolean;
  /** That request's body has arrived whole (always true without a request). */
  bodyComplete: boolean;
  /** Response bytes written but not yet taken by the client. */
  unsentBytes: number;
  /** Idle timeouts in a row during which the client sent nothing. */
  silentPeriods: number;
}

/**
 * Whose silence it is decides. The client's — no request yet (or only part of its headers), a body
 * it stopped sending, a response it stopped reading — closes the connection. Ours — a request
 * waiting for a download slot, a lock or an upstream that is slow to send — never does: a client
 * reading a long NAR as fast as it comes is not idle. A body the client stopped sending is given a
 * second period, so the upload's own watchdog (the same timeout) answers 408 before the cut.
 */
export function idleVerdict(c: SilentConnection): 'close' | 'wait' {
  if (!c.requestInFlight) return 'close';
  if (c.unsentBytes > 0) return 'close';
  if (!c.bodyComplete) return c.silentPeriods >= 1 ? 'close' : 'wait';
  return 'wait';
}

/**
 * Applies `idleMs` to every connection of `server` as an inactivity timeout (Node's socket timeout,
 * re-armed for each request, judged by idleVerdict), and as the limit for receiving headers. The
 * timeout for receiving a whole request is off: a big upload may take long, only silence is cut.
 */
export function limitIdleClients(server: Server, idleMs: number, connections: Connections): void {
  server.requestTimeout = 0;
  server.headersTimeout = idleMs;
  server.timeout = idleMs;
  // No need to re-arm the timeout for each request: between keep-alive requests Node sets the socket's
  // timeout to keepAliveTimeout, and gives it server.timeout (idleMs) again when the next one begins.
  const silence = new WeakMap<Socket, { bytesRead: number; periods: number }>();
  server.on('timeout', (socket: Socket) => {
    const req = connections.answering(socket);
    const last = silence.get(socket);
    const periods = last && last.bytesRead === socket.bytesRead ? last.periods + 1 : 0;
    silence.set(socket, { bytesRead: socket.bytesRead, periods });
    const verdict = idleVerdict({
      requestInFlight: req !== undefined,
      bodyComplete: req?.complete ?? true,
      unsentBytes: socket.writableLength,
      silentPeriods: periods,
    });
    if (verdict === 'close') socket.destroy();
    else socket.setTimeout(idleMs);
  });
}
