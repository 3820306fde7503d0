import { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { IncomingMessage, ServerResponse } from 'node:http';
import { FrontDoor, FrontExchange, frontHeaders } from 'src/common/front-door';
import { Store, storage } from 'nestjs-pino/storage';
import { Logger } from 'pino';
import { RequestLogOptions } from './logger.options';

/**
 * The logger of the lines a request causes: the root logger with the request's id, made only when a
 * line is written. nestjs-pino's logger (what Nest's Logger writes to) takes it from `storage`.
 */
class RequestStore implements Store {
  private child?: Logger;

  constructor(
    private readonly root: Logger,
    private readonly reqId: string,
  ) {}

  get logger(): Logger {
    return (this.child ??= this.root.child({ reqId: this.reqId }));
  }

  set logger(logger: Logger) {
    this.child = logger;
  }
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route enters its requests' log contexts itself, only on the paths that may log (see RequestContexts). */
    ownLogContext?: boolean;
  }
}

/**
 * The contexts that give the lines written while a request is served its id. They live in an
 * AsyncLocalStorage, and while one is enabled Node 20 runs its hooks for every promise and callback
 * created, whichever request it belongs to: a few microseconds a request, a sizeable share of a
 * cache hit. So routes that log nothing when all goes well (`config.ownLogContext`) enter a context
 * only on their other paths, and the storage is disabled whenever no context is open: a run of
 * narinfo hits then pays for no hook. Work that outlives its response (a download whose client
 * left) may write its last lines without the id.
 */
export class RequestContexts {
  private open = 0;
  private readonly closed = (): void => {
    if (--this.open === 0) storage.disable();
  };

  constructor(private readonly root: Logger) {}

  /** Runs `fn` in the context of `request`, which is left when its response is closed. */
  run<T>(request: FastifyRequest, reply: FastifyReply, fn: () => T): T {
    return this.enter(request.id, reply.raw, fn);
  }

  /** The same for a request Fastify has not seen (one the front door serves): by its id and response. */
  enter<T>(id: string, res: ServerResponse, fn: () => T): T {
    // A response already closed emits nothing more: such a context is not counted as open.
    if (!res.destroyed) {
      this.open++;
      res.on('close', this.closed);
    }
    return storage.run(new RequestStore(this.root, id), fn);
  }
}

/** What a request's line says of it, from Node's own request and response. */
interface Ended {
  id: string;
  req: IncomingMessage;
  res: ServerResponse;
  /** Milliseconds from its arrival to the close of its response. */
  elapsedMs: number;
  /** Set when the front door answered: its headers are not in getHeaders() (see frontHeaders). */
  atDoor?: FrontExchange;
}

/**
 * Logs each request once it ends (finished, or the client hung up) at the level `options` give it,
 * and runs it in its context (unless its route enters it itself). What pino-http did, without its
 * cost on every request (a child logger carrying the serialized request, made whether a line is
 * written or not): here a request pays for a listener, and a line is built only when its level is
 * enabled, so successful requests (debug) cost nothing at info. The requests answered at the front
 * door (see FrontDoor), which no Fastify hook sees, are logged alike.
 */
export function logRequests(
  fastify: FastifyInstance,
  root: Logger,
  contexts: RequestContexts,
  options: RequestLogOptions,
  door?: FrontDoor,
): void {
  const ended = ({ id, req, res, elapsedMs, atDoor }: Ended): void => {
    const level = options.customLogLevel(req, res);
    if (!root.isLevelEnabled(level)) return;
    const message = res.statusCode >= 500 ? options.customErrorMessage : options.customSuccessMessage;
    root[level](
      {
        reqId: id,
        req: {
          id,
          method: req.method,
          url: req.url,
          headers: req.headers,
          remoteAddress: req.socket.remoteAddress,
          remotePort: req.socket.remotePort,
        },
        res: { statusCode: res.statusCode, headers: atDoor ? frontHeaders(atDoor) : res.getHeaders() },
        responseTime: Math.round(elapsedMs),
      },
      message(req, res),
    );
  };
  fastify.addHook('onRequest', (request, reply, done) => {
    // 'close' comes for every response, finished or not; 'finish' never comes for a hang-up. A
    // closure, not a property on the response: Node's own objects keep their shape.
    if (!options.autoLogging.ignore(request.raw)) {
      reply.raw.on('close', () => ended({ id: request.id, req: request.raw, res: reply.raw, elapsedMs: reply.elapsedTime }));
    }
    if (request.routeOptions.config.ownLogContext) done();
    else contexts.run(request, reply, done);
  });
  door?.observe((exchange) => {
    const { id, req, res, started } = exchange;
    if (options.autoLogging.ignore(req)) return;
    // A client gone before the answer was sent got no headers.
    ended({ id, req, res, elapsedMs: Number(process.hrtime.bigint() - started) / 1e6, atDoor: res.headersSent ? exchange : undefined });
  });
}
