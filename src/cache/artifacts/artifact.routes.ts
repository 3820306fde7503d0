import { Injectable, OnModuleInit } from '@nestjs/common';
import { FastifyReply } from 'fastify';
import { RequestContexts } from 'src/logging/request-logging';
import { HotRequest, HotRoutes } from '../hot-routes';
import { ArtifactName } from './artifact-name';
import { ArtifactBody, ArtifactService } from './artifact.service';
import { ARTIFACT_ROUTES, rootFileName } from './artifact.urls';

/**
 * GET and HEAD of listings, logs, realisations, build traces and debuginfo, registered with Fastify
 * as the narinfo reads are (see HotRoutes: same token check, same error answers). `<hash>.ls` shares
 * the narinfos' `/:name`: NarInfoRoutes hands it to rootFile. PUT and DELETE are in ArtifactController.
 */
@Injectable()
export class ArtifactRoutes implements OnModuleInit {
  constructor(
    private readonly hot: HotRoutes,
    private readonly artifacts: ArtifactService,
    private readonly contexts: RequestContexts,
  ) {}

  onModuleInit(): void {
    for (const { urls, parse } of ARTIFACT_ROUTES) {
      this.hot.read('GET', urls, (request, reply) => this.answer('GET', parse(request.params), request, reply));
      this.hot.read('HEAD', urls, (request, reply) => this.answer('HEAD', parse(request.params), request, reply));
    }
  }

  /** A file at the root that is not a narinfo (the name of `/:name`): a listing, or a 400. */
  rootFile(method: 'GET' | 'HEAD', request: HotRequest, reply: FastifyReply): Promise<void> {
    return this.answer(method, rootFileName(request.params.name), request, reply);
  }

  private async answer(method: 'GET' | 'HEAD', name: ArtifactName, request: HotRequest, reply: FastifyReply): Promise<void> {
    const body = await this.open(name, request, reply);
    if (method === 'GET') return void reply.send(body.stream);
    body.stream.destroy();
    reply.send();
  }

  /** Opens the artifact (in the request's log context: a miss asks the upstreams) and sets the headers. */
  private async open(name: ArtifactName, request: HotRequest, reply: FastifyReply): Promise<ArtifactBody> {
    const body = await this.contexts.run(request, reply, () => this.artifacts.open(name));
    reply.header('content-type', name.contentType).header('content-length', body.size);
    if (body.contentEncoding) reply.header('content-encoding', body.contentEncoding);
    return body;
  }
}
