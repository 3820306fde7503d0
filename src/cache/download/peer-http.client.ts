import { Injectable, OnApplicationShutdown } from '@nestjs/common';
import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
// undici's entry point loads all of it (fetch, WebSocket, caches...): only what is used, from its own files.
/* eslint-disable @typescript-eslint/no-require-imports -- see above */
const Agent = require('undici/lib/dispatcher/agent.js') as typeof import('undici').Agent;
type Agent = InstanceType<typeof Agent>;
const request = require('undici/lib/api/api-request.js') as (
  this: Agent,
  options: Dispatcher.RequestOptions,
) => Promise<Dispatcher.ResponseData>;
/* eslint-enable @typescript-eslint/no-require-imports */

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

/**
 * PeerHttpClient on undici, with keep-alive connections between instances: one dispatcher per
 * connect timeout (in practice one), closed at shutdown.
 */
@Injectable()
export class UndiciPeerHttpClient extends PeerHttpClient implements OnApplicationShutdown {
  private readonly agents = new Map<number, Agent>();

  get(url: string, { headers, connectTimeoutMs, answerTimeoutMs }: PeerGetOptions): PeerCall {
    const abort = new AbortController();
    let answered = false;
    const response = (async (): Promise<PeerResponse> => {
      try {
        const target = new URL(url);
        // undici's request, as a method of the dispatcher it runs on (its entry point would attach it to every one).
        const res = await request.call(this.agent(connectTimeoutMs), {
          origin: target.origin,
          path: `${target.pathname}${target.search}`,
          method: 'GET',
          headers,
          signal: abort.signal,
          headersTimeout: answerTimeoutMs,
          bodyTimeout: 0,
        });
        answered = true;
        const length = res.headers['content-length'];
        return { status: res.statusCode, contentLength: typeof length === 'string' ? Number(length) : undefined, body: res.body };
      } catch (error) {
        throw explained(error, connectTimeoutMs, answerTimeoutMs);
      }
    })();
    const cancel = (): void => {
      if (!answered) abort.abort();
    };
    return { response, cancel };
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.all([...this.agents.values()].map((agent) => agent.destroy()));
    this.agents.clear();
  }

  private agent(connectTimeoutMs: number): Agent {
    let agent = this.agents.get(connectTimeoutMs);
    if (agent === undefined) {
      agent = new Agent({ connect: { timeout: connectTimeoutMs } });
      this.agents.set(connectTimeoutMs, agent);
    }
    return agent;
  }
}

/** undici's timeouts in the words of the options that set them; anything else as it came. */
function explained(error: unknown, connectTimeoutMs: number, answerTimeoutMs: number): Error {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'UND_ERR_CONNECT_TIMEOUT') return new Error(`no connection within ${connectTimeoutMs} ms`);
  if (code === 'UND_ERR_HEADERS_TIMEOUT') return new Error(`no answer within ${answerTimeoutMs} ms`);
  return error instanceof Error ? error : new Error(String(error));
}
