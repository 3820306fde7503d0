import { Injectable, OnModuleInit } from '@nestjs/common';
import { FastifyReply } from 'fastify';
import { ServerResponse } from 'node:http';
import { RequestContexts } from 'src/logging/request-logging';
import { markServedSource } from 'src/metrics';
import { HotRequest, HotRoutes } from './hot-routes';
import { NarInfoService } from './narinfo.service';
import { narInfoHashOf } from './nar-name';
import { ArtifactRoutes } from './artifacts/artifact.routes';

const NARINFO_TYPE = 'text/x-nix-narinfo';

/** Every narinfo route also answers under /upload/, where `nix copy --to http://host/upload` sends. */
const NARINFO_URLS = ['/:name', '/upload/:name'];

/** A file at the root, named plainly: what the front door takes (anything else is Fastify's to route and decode). */
const ROOT_FILE = /^\/[^/?%]+$/;

/**
 * GET and HEAD of narinfos: the hottest routes of a cache (a client asks for one per store path of a
 * closure), served by Fastify directly (see HotRoutes), and a GET hit even before Fastify, at the
 * server's front door. A hit logs nothing; a miss, which fetches from upstream, runs in the
 * request's log context. PUT and DELETE stay in CacheController.
 */
@Injectable()
export class NarInfoRoutes implements OnModuleInit {
  constructor(
    private readonly hot: HotRoutes,
    private readonly narInfos: NarInfoService,
    private readonly contexts: RequestContexts,
    private readonly others: ArtifactRoutes,
  ) {}

  /**
   * Responses whose narinfo the front door has just looked up and not found: their route goes on to
   * the fetch (which looks again under the lock) without a second lookup, a round trip on a
   * database server.
   */
  private readonly notStored = new WeakSet<ServerResponse>();

  onModuleInit(): void {
    // A hit at the root is answered at the front door; misses and everything else by the routes below.
    this.hot.front(
      '/:name',
      (url) => (ROOT_FILE.test(url) ? narInfoHashOf(url.slice(1)) : undefined),
      (hash, res) =>
        this.narInfos.storedNarInfo(hash).then((body) => {
          if (!body) {
            this.notStored.add(res);
            return null;
          }
          markServedSource(res, 'cache');
          return { type: NARINFO_TYPE, body };
        }),
    );
    // Other files at the root (`<hash>.ls`) are handed on here rather than routed by Fastify: a pattern
    // with a static ending is a regular expression its router would test before every narinfo.
    this.hot.read('GET', NARINFO_URLS, async (request, reply) => {
      const hash = narInfoHashOf(request.params.name);
      if (hash === undefined) return this.others.rootFile('GET', request, reply);
      const text = await this.narInfo(hash, request, reply);
      reply.header('content-type', NARINFO_TYPE).send(text);
    });
    this.hot.read('HEAD', NARINFO_URLS, async (request, reply) => {
      const hash = narInfoHashOf(request.params.name);
      if (hash === undefined) return this.others.rootFile('HEAD', request, reply);
      const text = await this.narInfo(hash, request, reply);
      reply.header('content-type', NARINFO_TYPE).header('content-length', text.length).send();
    });
  }

  private async narInfo(hash: string, request: HotRequest, reply: FastifyReply): Promise<Buffer> {
    const stored = this.notStored.has(reply.raw) ? null : await this.narInfos.storedNarInfo(hash);
    markServedSource(reply.raw, stored ? 'cache' : 'upstream');
    return stored ?? this.contexts.run(request, reply, () => this.narInfos.fetchNarInfo(hash));
  }
}
