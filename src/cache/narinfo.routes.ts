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
 * closure), served by Fastify directly (see HotRoutes), and a GET at the root even before Fastify,
 * at the server's front door: a hit, and a miss fetched from upstream, in the request's log context
 * (Fastify's routing, hooks and reply are a sizeable share of a miss too). A hit logs nothing. A
 * failed fetch is handed to the route behind the door, which answers it as the controllers would
 * (DomainErrorFilter) without fetching again. PUT and DELETE stay in CacheController.
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
   * Why the front door handed a request on: the fetch of its narinfo failed (a 404 among others).
   * Its route answers with that error; a request without an entry here (a failed lookup) is served
   * by the route from the start.
   */
  private readonly failedAtDoor = new WeakMap<ServerResponse, { error: unknown }>();

  onModuleInit(): void {
    this.hot.front(
      '/:name',
      (url) => (ROOT_FILE.test(url) ? narInfoHashOf(url.slice(1)) : undefined),
      (hash, res, id) =>
        this.narInfos.storedNarInfo(hash).then((stored) => {
          markServedSource(res, stored ? 'cache' : 'upstream');
          if (stored) return { type: NARINFO_TYPE, body: stored };
          return this.contexts
            .enter(id, res, () => this.narInfos.fetchNarInfo(hash))
            .then(
              (body) => ({ type: NARINFO_TYPE, body }),
              (error: unknown) => {
                this.failedAtDoor.set(res, { error });
                return null;
              },
            );
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
    const failed = this.failedAtDoor.get(reply.raw);
    if (failed) throw failed.error;
    const stored = await this.narInfos.storedNarInfo(hash);
    markServedSource(reply.raw, stored ? 'cache' : 'upstream');
    return stored ?? this.contexts.run(request, reply, () => this.narInfos.fetchNarInfo(hash));
  }
}
