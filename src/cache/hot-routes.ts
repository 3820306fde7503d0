import { Inject, Injectable } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { NCPS_CONFIG } from 'src/config/config.module';
import { NcpsConfig } from 'src/config/config';
import { RequestContexts } from 'src/logging/request-logging';
import { DomainErrorFilter } from './domain-error.filter';
import { AccessTokens } from 'src/auth';
import { FrontRoute, frontDoorOf } from 'src/common/front-door';

/** Route parameters of the hot routes: the last path segment, as for the controllers' `:name`. */
export type HotRequest = FastifyRequest<{ Params: { name: string } }>;

/**
 * Answers the request (reply.send, not awaited) or throws; errors are answered as DomainErrorFilter
 * does. Runs outside the request's log context: work that may log runs in RequestContexts.run.
 */
export type HotHandler = (request: HotRequest, reply: FastifyReply) => Promise<void>;

/**
 * Read routes that Fastify serves itself, without Nest's dispatch: for a cache hit, finding the
 * guards by reflection, building execution contexts, resolving parameter decorators and running the
 * exception zone cost more than the hit. What Nest would add is done here once per route instead:
 * TokenGuard's check (the same AccessTokens), and errors answered by the same DomainErrorFilter, in
 * the request's log context. Fastify's hooks (request ids, request logging, metrics, body handling)
 * run as for every route. Only for GET and HEAD: writes keep the controllers, with VerbGuard and
 * their bodies.
 */
@Injectable()
export class HotRoutes {
  private readonly tokens: AccessTokens;
  private readonly errors = new DomainErrorFilter();

  constructor(
    @Inject(NCPS_CONFIG) config: NcpsConfig,
    private readonly adapterHost: HttpAdapterHost,
    private readonly contexts: RequestContexts,
  ) {
    this.tokens = new AccessTokens(config.cache);
  }

  /**
   * Serves `method` on each of `urls` (Fastify patterns with a `:name` parameter) with `handler`. To
   * be called before the application listens (from onModuleInit); the controllers must not declare
   * the same method and pattern. Does nothing without an HTTP server (application contexts, tests).
   */
  read(method: 'GET' | 'HEAD', urls: readonly string[], handler: HotHandler): void {
    const fastify = this.adapterHost.httpAdapter?.getInstance<FastifyInstance>();
    if (!fastify) return;
    const { tokens, errors, contexts } = this;
    const fail = (e: unknown, request: HotRequest, reply: FastifyReply): void =>
      contexts.run(request, reply, () => errors.answer(e, request, reply));
    // Not async: Fastify then leaves the reply to the handler instead of wrapping a promise around it.
    const handle = (request: HotRequest, reply: FastifyReply): void => {
      try {
        tokens.check(request.method, request.headers.authorization);
      } catch (e) {
        return fail(e, request, reply);
      }
      handler(request, reply).catch((e: unknown) => fail(e, request, reply));
    };
    for (const url of urls) fastify.route({ method, url, handler: handle, config: { ownLogContext: true } });
  }

  /**
   * Answers GET requests whose URL `match` turns into a key at the server's front door, before
   * Fastify routes them (see FrontDoor): `answer` gives the body, or null to leave the request to the
   * route `read` registered for `pattern`, which must exist. So does a request TokenGuard would
   * refuse, or one `match` throws on: that route answers it (401, 400). Work of `answer` that may log
   * runs in RequestContexts.enter with the id it is given. Does nothing without a front door (a
   * server the application did not make).
   */
  front(pattern: string, match: (url: string) => string | undefined, answer: FrontRoute['answer']): void {
    const door = frontDoorOf(this.adapterHost.httpAdapter?.getInstance<FastifyInstance>()?.server);
    if (!door) return;
    const { tokens } = this;
    door.route({
      pattern,
      take: (req) => {
        if (req.method !== 'GET' || req.url === undefined) return undefined;
        try {
          tokens.check('GET', req.headers.authorization);
          return match(req.url);
        } catch {
          return undefined;
        }
      },
      answer,
    });
  }
}
