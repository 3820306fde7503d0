import { randomUUID } from 'node:crypto';
import { IncomingMessage } from 'node:http';
import { FastifyInstance } from 'fastify';
import { REQUEST_ID_HEADER } from 'src/common/front-door';

export { REQUEST_ID_HEADER };

/** What a load balancer or client may pass as request id: short, and nothing that could forge a log line. */
const ACCEPTED_ID = /^[\w.-]{1,64}$/;

/**
 * Fresh ids are shaped like UUIDs: a random prefix drawn once per process (version and variant
 * included) and a counter in the last group. Unique within the process, unlikely to meet another
 * instance's, and cheap: every response carries one, and randomUUID() builds its text from twenty
 * pieces. An id only correlates log lines; it guards nothing.
 */
const FRESH_PREFIX = randomUUID().slice(0, 24);
const FRESH_LIMIT = 2 ** 48;
let freshCount = 0;

/** The id of a request: the caller's X-Request-Id when it is sane, else a fresh one. */
export function requestId(req: IncomingMessage): string {
  const given = req.headers[REQUEST_ID_HEADER];
  if (typeof given === 'string' && ACCEPTED_ID.test(given)) return given;
  freshCount = (freshCount + 1) % FRESH_LIMIT;
  return FRESH_PREFIX + freshCount.toString(16).padStart(12, '0');
}

/** Echoes each request's id in the response, so a client's report can be matched with our log lines. */
export function echoRequestIds(fastify: FastifyInstance): void {
  fastify.addHook('onRequest', (request, reply, done) => {
    reply.header(REQUEST_ID_HEADER, request.id);
    done();
  });
}
