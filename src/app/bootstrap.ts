import { Logger as NestLogger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { FastifyInstance } from 'fastify';
import { IncomingMessage, ServerResponse } from 'node:http';
import { Logger } from 'nestjs-pino';
import { NcpsConfig } from 'src/config/config';
import { AppModule } from './app.module';
import { echoRequestIds, requestId } from 'src/logging/request-id';
import { limitIdleClients } from './idle-clients';
import { Connections } from './connections';
import { ServerSettings, frontDoorServer, hasBody, idGivenAtDoor } from 'src/common/front-door';

/** Builds the Nest application on Fastify (not listening yet). Used by `ncps serve` and the tests. */
export async function createApp(config: NcpsConfig): Promise<NestFastifyApplication> {
  // HEAD is routed explicitly: an implicit HEAD would run the GET handler and could start a download.
  // return503OnClosing off: while draining, requests already on a connection are served, not refused.
  // skipMiddie: no Nest middleware is used (request logging is a Fastify hook, see LoggingModule), so
  // no request pays for running an empty middleware chain; adding one would fail loudly at start.
  // serverFactory: the server answers the hottest reads at its front door, before Fastify (see HotRoutes).
  const adapter = new FastifyAdapter({
    exposeHeadRoutes: false,
    routerOptions: { maxParamLength: 256 },
    genReqId: (req: IncomingMessage) => idGivenAtDoor(req) ?? requestId(req),
    return503OnClosing: false,
    skipMiddie: true,
    serverFactory: (handler: (req: IncomingMessage, res: ServerResponse) => void, options: unknown) =>
      frontDoorServer(handler, options as ServerSettings, requestId),
  });
  const fastify = adapter.getInstance();
  echoRequestIds(fastify);
  streamBodies(fastify);
  const connections = new Connections(fastify.server);
  limitIdleClients(fastify.server, config.server.requestIdleTimeoutMs, connections);
  closeAfterUnreadBody(fastify);
  drainOnClose(fastify, config.server.shutdownTimeoutMs, connections);
  // bodyParser off: Nest would add JSON and form parsers that buffer, bypassing streamBodies.
  const app = await NestFactory.create<NestFastifyApplication>(AppModule.forRoot(config), adapter, {
    bufferLogs: true,
    bodyParser: false,
  });
  app.useLogger(app.get(Logger));
  for (const warning of config.warnings) new NestLogger('Config').warn(warning);
  return app;
}

/**
 * Every handler gets its body as a stream, whatever the Content-Type (or none): NARs are never
 * buffered, narinfos are read with a limit. A request without a body (no Content-Length, or 0)
 * gets the empty stream of its own request, so an empty upload is judged like any other body (400),
 * never a crash on `undefined`.
 */
function streamBodies(fastify: FastifyInstance): void {
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser('*', (_req, payload, done) => done(null, payload));
  fastify.addHook('preValidation', (request, _reply, done) => {
    if (request.body === undefined) request.body = request.raw;
    done();
  });
}

/**
 * A response sent before its request's body arrived whole (a refused upload: too large, too slow,
 * not allowed) closes the connection after it: the rest of that body is not worth receiving, and
 * it must not be read as the next request.
 */
function closeAfterUnreadBody(fastify: FastifyInstance): void {
  fastify.addHook('onSend', (request, reply, payload, done) => {
    // One without a body is not `complete` yet while its headers are being handled (Node marks it so
    // just after): an answer given right away (a refused token) must not cost the client its connection.
    if (!request.raw.complete && hasBody(request.raw)) reply.header('connection', 'close');
    done(null, payload);
  });
}

/**
 * Graceful close: stop accepting, let responses in flight finish, close keep-alive connections as
 * soon as they have no request in flight, and cut whatever still runs once `timeoutMs` has passed.
 * Sockets are tracked (Connections) because Node's closeIdleConnections() leaves alone a connection
 * that was opened but never sent a request (clients and load balancers pre-open them).
 */
function drainOnClose(fastify: FastifyInstance, timeoutMs: number, connections: Connections): void {
  const server = fastify.server;
  fastify.addHook('preClose', (done: () => void) => {
    const sweep = () => connections.idle().forEach((socket) => socket.destroy());
    sweep();
    const idleSweep = setInterval(sweep, 100);
    const deadline = setTimeout(() => server.closeAllConnections(), timeoutMs);
    server.once('close', () => {
      clearInterval(idleSweep);
      clearTimeout(deadline);
    });
    idleSweep.unref();
    deadline.unref();
    done();
  });
}

/** Listens on the configured address; an empty host means every interface (IPv6 and IPv4 when available). */
export async function listen(app: NestFastifyApplication, config: NcpsConfig): Promise<string> {
  const { host, port } = config.server;
  if (host) {
    await app.listen(port, host);
  } else {
    await app.listen(port, '::').catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'EAFNOSUPPORT' && e.code !== 'EADDRNOTAVAIL') throw e;
      return app.listen(port, '0.0.0.0');
    });
  }
  return app.getUrl();
}
