import { Context, SpanKind, SpanStatusCode, Tracer, trace } from '@opentelemetry/api';
import {
  ATTR_CLIENT_ADDRESS,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_URL_PATH,
  ATTR_URL_SCHEME,
  ATTR_USER_AGENT_ORIGINAL,
  ATTR_ERROR_TYPE,
} from '@opentelemetry/semantic-conventions';
import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { frontDoorOf } from 'src/common/front-door';

export interface RequestTracing {
  tracer: Tracer;
  /** The caller's trace context (W3C `traceparent`), or the root context. */
  extract(headers: IncomingHttpHeaders): Context;
  /** Runs `fn` with `context` current (so the handler and what it starts are its children). */
  run(context: Context, fn: () => void): void;
}

/**
 * A file name in a `:name` route parameter, told by its ending: a store path hash (32 nix32 letters)
 * or a NAR file hash (52) followed by what it is. Any other name keeps the route's own `:name`, so span names stay a short list.
 */
const FILE_ENDING = /^(?:[0-9a-df-np-sv-z]{32}|[0-9a-df-np-sv-z]{52})(\.narinfo|\.ls|\.nar(?:\.(?:xz|zst|bz2|gz|br|lz4|lzip))?)$/;

/**
 * The route of a request as a span names it, e.g. `/:hash.narinfo`, `/nar/:hash.nar.xz`: the Fastify
 * pattern, with the `:name` of the cache's routes told apart by the kind of file asked for.
 */
export function routeOf(request: FastifyRequest): string | undefined {
  const route = request.routeOptions.url;
  if (route === undefined || !route.endsWith(':name')) return route;
  const name = (request.params as { name?: unknown } | undefined)?.name;
  const ending = typeof name === 'string' ? FILE_ENDING.exec(name)?.[1] : undefined;
  if (ending === undefined) return route;
  return `${route.slice(0, -':name'.length)}:hash${ending}`;
}

/**
 * A server span for every request, named `<METHOD> <route>`, child of the caller's `traceparent`
 * when it sends one. The request is handled with the span current; it ends when the response
 * closes (sent, or the client gone), with the status, failed for a 5xx.
 */
export function traceRequests(fastify: FastifyInstance, tracing: RequestTracing): void {
  // Every request is a span, made here: none may be answered at the front door, out of these hooks' sight.
  frontDoorOf(fastify.server)?.shut();
  fastify.addHook('onRequest', (request, reply, done) => {
    const parent = tracing.extract(request.headers);
    const route = routeOf(request);
    const path = request.url.split('?', 1)[0];
    const span = tracing.tracer.startSpan(
      route === undefined ? request.method : `${request.method} ${route}`,
      {
        kind: SpanKind.SERVER,
        attributes: {
          [ATTR_HTTP_REQUEST_METHOD]: request.method,
          [ATTR_URL_PATH]: path,
          [ATTR_URL_SCHEME]: request.protocol,
          [ATTR_CLIENT_ADDRESS]: request.ip,
          'ncps.request_id': request.id,
          ...(route === undefined ? {} : { [ATTR_HTTP_ROUTE]: route }),
          ...(request.headers['user-agent'] === undefined ? {} : { [ATTR_USER_AGENT_ORIGINAL]: request.headers['user-agent'] }),
        },
      },
      parent,
    );
    reply.raw.once('close', () => {
      const status = reply.raw.statusCode;
      span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, status);
      if (!reply.raw.writableFinished) span.setAttribute('ncps.client_closed', true);
      if (status >= 500) {
        span.setAttribute(ATTR_ERROR_TYPE, String(status));
        span.setStatus({ code: SpanStatusCode.ERROR });
      }
      span.end();
    });
    tracing.run(trace.setSpan(parent, span), done);
  });
}
