import { Injectable } from '@nestjs/common';
import { ClientRequest, get as httpGet, IncomingMessage } from 'node:http';
import { get as httpsGet } from 'node:https';
import { Readable } from 'node:stream';

/** What a request to another instance is sent with, and how long it may take to be answered. */
export interface PeerGetOptions {
  headers: Record<string, string>;
  /** The connection must be made within this (peers are on the same network). */
  connectTimeoutMs: number;
  /** The response head must arrive within this; the body may then take as long as it takes. */
  answerTimeoutMs: number;
}

/** A peer's answer: its status and body. A body the caller does not want must still be drained (`resume()`). */
export interface PeerResponse {
  status: number;
  /** The Content-Length the peer sent, if any. */
  contentLength?: number;
  /** Errors, rather than ends, if the peer hangs up before the end. */
  body: Readable;
}

/** A request in flight. */
export interface PeerCall {
  /** Rejects with what went wrong (URL, connection, timeout, cancellation) before a response head arrived. */
  response: Promise<PeerResponse>;
  /** Drops the request if no response head has arrived yet; a response already received is left alone. */
  cancel(): void;
}

/**
 * The HTTP client instances use to ask each other for a download in progress (see PeerStreamService).
 * An abstract class so that it is the DI token and fakes are typed against it.
 */
export abstract class PeerHttpClient {
  abstract get(url: string, options: PeerGetOptions): PeerCall;
}

/** PeerHttpClient on node:http / node:https, without keep-alive agents of its own (the global ones). */
@Injectable()
export class NodePeerHttpClient extends PeerHttpClient {
  get(url: string, { headers, connectTimeoutMs, answerTimeoutMs }: PeerGetOptions): PeerCall {
    let req: ClientRequest | undefined;
    let answered = false;
    const response = new Promise<PeerResponse>((resolve, reject) => {
      try {
        req = (url.startsWith('https:') ? httpsGet : httpGet)(url, { headers, timeout: answerTimeoutMs }, (res: IncomingMessage) => {
          answered = true;
          req!.setTimeout(0);
          const length = res.headers['content-length'];
          resolve({ status: res.statusCode ?? 0, contentLength: length === undefined ? undefined : Number(length), body: res });
        });
      } catch (e) {
        return reject(e instanceof Error ? e : new Error(String(e))); // a URL Node cannot request
      }
      const request = req;
      request.on('socket', (socket) => {
        if (!socket.connecting) return;
        const timer = setTimeout(() => request.destroy(new Error(`no connection within ${connectTimeoutMs} ms`)), connectTimeoutMs);
        socket.once('connect', () => clearTimeout(timer));
        socket.once('close', () => clearTimeout(timer));
      });
      request.on('timeout', () => request.destroy(new Error(`no answer within ${answerTimeoutMs} ms`)));
      request.on('error', reject);
    });
    const cancel = () => {
      if (!answered) req?.destroy();
    };
    return { response, cancel };
  }
}
