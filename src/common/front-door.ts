import { IncomingMessage, Server, ServerResponse, createServer } from 'node:http';

/** The response header that carries each request's id (see src/logging/request-id.ts). */
export const REQUEST_ID_HEADER = 'x-request-id';

/** A whole body, made before the answer starts. */
export interface FrontAnswer {
  type: string;
  body: Buffer;
}

/**
 * A read the front door answers before Fastify routes the request: the hottest ones (a narinfo
 * hit), for which Fastify's routing, request and reply objects and hooks cost more than the answer.
 */
export interface FrontRoute {
  /** What requests of this route are labelled with (metrics): the pattern of Fastify's route for them. */
  pattern: string;
  /** The key this route answers the request for, or undefined to leave the request to Fastify. */
  take(req: IncomingMessage): string | undefined;
  /**
   * The answer, or null to hand the request to Fastify after all. A failure hands it over too: the
   * route behind answers it as it should. `id` is the request's id, for the lines logged meanwhile;
   * a request handed over keeps it (see idGivenAtDoor).
   */
  answer(key: string, res: ServerResponse, id: string): Promise<FrontAnswer | null>;
}

/** One request the front door answered, told to the observers once its response closed (sent, or the client gone). */
export interface FrontExchange {
  req: IncomingMessage;
  res: ServerResponse;
  id: string;
  route: FrontRoute;
  /** process.hrtime.bigint() when the request reached the door. */
  started: bigint;
  answer: FrontAnswer;
}

export type FrontObserver = (exchange: FrontExchange) => void;

/** What Fastify's serverFactory is given of its processed options: the settings of its own HTTP/1 server. */
export interface ServerSettings {
  keepAliveTimeout: number;
  requestTimeout: number;
  connectionTimeout: number;
  maxRequestsPerSocket?: number;
}

/**
 * The requests answered before Fastify sees them. Each carries a request id (the given one or a new
 * one, as Fastify's genReqId) and is told to the observers (request logging, metrics) as Fastify's
 * hooks would have told them. A request with a body is always left to Fastify, which decides what
 * becomes of an unread body. Shut (tracing is on: every request is a span, made by a Fastify hook),
 * every request goes to Fastify.
 */
export class FrontDoor {
  private readonly routes: FrontRoute[] = [];
  private readonly observers: FrontObserver[] = [];
  private open = true;

  constructor(private readonly requestId: (req: IncomingMessage) => string) {}

  route(route: FrontRoute): void {
    this.routes.push(route);
  }

  observe(observer: FrontObserver): void {
    this.observers.push(observer);
  }

  shut(): void {
    this.open = false;
  }

  /** Answers `req` if a route takes it; else hands it to `inner` (Fastify's handler). */
  handle(req: IncomingMessage, res: ServerResponse, inner: (req: IncomingMessage, res: ServerResponse) => void): void {
    if (this.open && !hasBody(req)) {
      for (const route of this.routes) {
        const key = route.take(req);
        if (key !== undefined) return this.serve(route, key, req, res, inner);
      }
    }
    inner(req, res);
  }

  private serve(
    route: FrontRoute,
    key: string,
    req: IncomingMessage,
    res: ServerResponse,
    inner: (req: IncomingMessage, res: ServerResponse) => void,
  ): void {
    const started = process.hrtime.bigint();
    const id = this.requestId(req);
    const next = (): void => {
      handedOver.set(req, id);
      inner(req, res);
    };
    let answered: Promise<FrontAnswer | null>;
    try {
      answered = route.answer(key, res, id);
    } catch {
      return next();
    }
    answered.then((answer) => {
      if (!answer) return next();
      const tell = () => {
        const exchange: FrontExchange = { req, res, id, route, started, answer };
        for (const observer of this.observers) observer(exchange);
      };
      // The client hung up while the answer was looked up: nothing to send, the response closed already.
      if (res.destroyed) return tell();
      // Given to writeHead as a list: Node then writes them without keeping a header map, so
      // getHeaders() is empty; observers that show them take them from frontHeaders.
      res.writeHead(200, ['content-type', answer.type, 'content-length', String(answer.body.length), REQUEST_ID_HEADER, id]);
      res.end(answer.body);
      // 'close' comes once; `on` spares the wrapper `once` makes.
      if (this.observers.length > 0) res.on('close', tell);
    }, next);
  }
}

/** The headers the front door sent with `exchange`'s answer, as getHeaders() would give them. */
export function frontHeaders(exchange: Pick<FrontExchange, 'id' | 'answer'>): Record<string, string | number> {
  return { 'content-type': exchange.answer.type, 'content-length': exchange.answer.body.length, [REQUEST_ID_HEADER]: exchange.id };
}

/** Whether the request announced a body (Content-Length above 0, or chunked). */
export function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

const doors = new WeakMap<Server, FrontDoor>();

/** Ids of the requests a route took and then handed to Fastify: they keep the id given at the door. */
const handedOver = new WeakMap<IncomingMessage, string>();

/**
 * The id the front door gave `req` before handing it to Fastify, if it did: for Fastify's genReqId,
 * so that the lines logged at the door and after carry one id.
 */
export function idGivenAtDoor(req: IncomingMessage): string | undefined {
  return handedOver.get(req);
}

/**
 * An HTTP/1 server for Fastify's `serverFactory`, set up as Fastify sets up its own, whose requests
 * pass its front door first (see frontDoorOf) and go to `fastify` (the handler Fastify gives the
 * factory) when the door leaves them.
 */
export function frontDoorServer(
  fastify: (req: IncomingMessage, res: ServerResponse) => void,
  settings: ServerSettings,
  requestId: (req: IncomingMessage) => string,
): Server {
  const door = new FrontDoor(requestId);
  const server = createServer((req, res) => door.handle(req, res, fastify));
  server.keepAliveTimeout = settings.keepAliveTimeout;
  server.requestTimeout = settings.requestTimeout;
  server.setTimeout(settings.connectionTimeout);
  if (settings.maxRequestsPerSocket !== undefined && settings.maxRequestsPerSocket > 0) {
    server.maxRequestsPerSocket = settings.maxRequestsPerSocket;
  }
  doors.set(server, door);
  return server;
}

/** The front door of `server`, when it was made by frontDoorServer (not in tests that bring their own). */
export function frontDoorOf(server: Server | undefined): FrontDoor | undefined {
  return server && doors.get(server);
}
