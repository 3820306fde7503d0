import { Controller, Delete, HttpCode, Param, Put, Req, UseGuards } from '@nestjs/common';
import { FastifyRequest } from 'fastify';
import { Readable } from 'node:stream';
import { TokenGuard } from 'src/auth';
import { AllowVerb, VerbGuard } from '../verb.guard';
import { ArtifactName, buildTraceName, debugInfoName, listingName, logName, realisationName } from './artifact-name';
import { ArtifactService } from './artifact.service';

/**
 * Uploads and deletions of listings, logs, realisations, build traces and debuginfo: as for
 * narinfos and NARs, the put token first (TokenGuard), then --cache-allow-put-verb /
 * --cache-allow-delete-verb (VerbGuard). Reads are in ArtifactRoutes.
 */
@Controller()
@UseGuards(TokenGuard, VerbGuard)
export class ArtifactController {
  constructor(private readonly artifacts: ArtifactService) {}

  @Put([':hash.ls', 'upload/:hash.ls'])
  @AllowVerb('put')
  @HttpCode(204)
  putListing(@Param('hash') hash: string, @Req() req: FastifyRequest): Promise<void> {
    return this.put(listingName(`${hash}.ls`), req);
  }

  @Delete([':hash.ls', 'upload/:hash.ls'])
  @AllowVerb('delete')
  @HttpCode(204)
  deleteListing(@Param('hash') hash: string): Promise<void> {
    return this.artifacts.delete(listingName(`${hash}.ls`));
  }

  @Put(['log/:name', 'upload/log/:name'])
  @AllowVerb('put')
  @HttpCode(204)
  putLog(@Param('name') name: string, @Req() req: FastifyRequest): Promise<void> {
    return this.put(logName(name), req);
  }

  @Delete(['log/:name', 'upload/log/:name'])
  @AllowVerb('delete')
  @HttpCode(204)
  deleteLog(@Param('name') name: string): Promise<void> {
    return this.artifacts.delete(logName(name));
  }

  @Put(['realisations/:name', 'upload/realisations/:name'])
  @AllowVerb('put')
  @HttpCode(204)
  putRealisation(@Param('name') name: string, @Req() req: FastifyRequest): Promise<void> {
    return this.put(realisationName(name), req);
  }

  @Delete(['realisations/:name', 'upload/realisations/:name'])
  @AllowVerb('delete')
  @HttpCode(204)
  deleteRealisation(@Param('name') name: string): Promise<void> {
    return this.artifacts.delete(realisationName(name));
  }

  @Put(['build-trace-v2/:drv/:name', 'upload/build-trace-v2/:drv/:name'])
  @AllowVerb('put')
  @HttpCode(204)
  putBuildTrace(@Param('drv') drv: string, @Param('name') name: string, @Req() req: FastifyRequest): Promise<void> {
    return this.put(buildTraceName(drv, name), req);
  }

  @Delete(['build-trace-v2/:drv/:name', 'upload/build-trace-v2/:drv/:name'])
  @AllowVerb('delete')
  @HttpCode(204)
  deleteBuildTrace(@Param('drv') drv: string, @Param('name') name: string): Promise<void> {
    return this.artifacts.delete(buildTraceName(drv, name));
  }

  @Put(['debuginfo/:name', 'upload/debuginfo/:name'])
  @AllowVerb('put')
  @HttpCode(204)
  putDebugInfo(@Param('name') name: string, @Req() req: FastifyRequest): Promise<void> {
    return this.put(debugInfoName(name), req);
  }

  @Delete(['debuginfo/:name', 'upload/debuginfo/:name'])
  @AllowVerb('delete')
  @HttpCode(204)
  deleteDebugInfo(@Param('name') name: string): Promise<void> {
    return this.artifacts.delete(debugInfoName(name));
  }

  private put(name: ArtifactName, req: FastifyRequest): Promise<void> {
    const declared = req.headers['content-length'];
    return this.artifacts.put(name, req.body as Readable, declared ? Number(declared) : undefined, req.headers['content-encoding']);
  }
}
