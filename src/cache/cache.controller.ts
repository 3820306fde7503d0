import { Controller, Delete, Get, Head, HttpCode, Param, Put, Req, Res, UseGuards } from '@nestjs/common';
import { FastifyReply, FastifyRequest } from 'fastify';
import { Readable } from 'node:stream';
import { markServedSource } from 'src/metrics';
import { NarInfoService } from './narinfo.service';
import { NarService } from './nar.service';
import { parseNarInfoName } from './nar-name';
import { parseRange } from './http-range';
import { TokenGuard } from 'src/auth';
import { VerbGuard, AllowVerb } from './verb.guard';
import { ZstdEncoderPool, isUncompressedNar, wantsZstd } from './zstd-encoding';

const NAR_TYPE = 'application/x-nix-nar';

/**
 * The binary cache protocol: narinfos at the root, NARs under nar/. Every route also answers under
 * /upload/, where `nix copy --to http://host/upload` sends its uploads. Narinfo reads are served by
 * NarInfoRoutes, without Nest's dispatch (see HotRoutes).
 */
@Controller()
@UseGuards(TokenGuard, VerbGuard)
export class CacheController {
  constructor(
    private readonly narInfos: NarInfoService,
    private readonly nars: NarService,
    private readonly zstd: ZstdEncoderPool,
  ) {}

  @Put([':name', 'upload/:name'])
  @AllowVerb('put')
  @HttpCode(204)
  async putNarInfo(@Param('name') name: string, @Req() req: FastifyRequest): Promise<void> {
    const declared = req.headers['content-length'];
    await this.narInfos.putNarInfo(parseNarInfoName(name), req.body as Readable, declared ? Number(declared) : undefined);
  }

  @Delete([':name', 'upload/:name'])
  @AllowVerb('delete')
  @HttpCode(204)
  async deleteNarInfo(@Param('name') name: string): Promise<void> {
    await this.narInfos.deleteNarInfo(parseNarInfoName(name));
  }

  @Get(['nar/:name', 'upload/nar/:name'])
  async getNar(@Param('name') name: string, @Req() req: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    let unsatisfiable = false;
    const header = req.headers.range;
    // Without a Range header there is nothing to choose once the size is known: on S3 that saves a HEAD.
    const pickRange =
      header === undefined
        ? undefined
        : (size: number) => {
            const r = parseRange(header, size);
            unsatisfiable = r.kind === 'unsatisfiable';
            return r.kind === 'range' ? r.range : undefined;
          };
    const body = await this.nars.getNar(name, pickRange);
    markServedSource(reply.raw, body.source);
    reply.header('content-type', NAR_TYPE);
    // Ranges work whenever the length is known in advance (always for stored NARs).
    if (body.size !== undefined) reply.header('accept-ranges', 'bytes');
    if (unsatisfiable) {
      body.stream.destroy();
      await reply.status(416).header('content-range', `bytes */${body.size}`).send();
      return;
    }
    if (body.range) {
      const { start, end } = body.range;
      reply.status(206).header('content-range', `bytes ${start}-${end}/${body.size}`);
      reply.header('content-length', end - start + 1);
    } else if (wantsZstd(name, req.headers) && this.zstd.hasRoom()) {
      // An uncompressed NAR, to a client that accepts zstd: encoded on the fly (on a worker thread),
      // as ncps does. With every encoder busy the identity bytes go out instead (see ZstdEncoderPool).
      // Range requests (handled above) always get the identity bytes, so resuming keeps working.
      reply.header('content-encoding', 'zstd').header('vary', 'accept-encoding');
      reply.removeHeader('accept-ranges');
      await reply.send(this.zstd.encode(body.stream));
      return;
    } else if (body.size !== undefined) {
      reply.header('content-length', body.size);
    }
    if (isUncompressedNar(name)) reply.header('vary', 'accept-encoding');
    await reply.send(body.stream);
  }

  @Head(['nar/:name', 'upload/nar/:name'])
  async headNar(@Param('name') name: string, @Res() reply: FastifyReply): Promise<void> {
    const size = await this.nars.headNar(name);
    reply.header('content-type', NAR_TYPE);
    if (size !== undefined) reply.header('accept-ranges', 'bytes').header('content-length', size);
    await reply.send();
  }

  @Put(['nar/:name', 'upload/nar/:name'])
  @AllowVerb('put')
  @HttpCode(204)
  async putNar(@Param('name') name: string, @Req() req: FastifyRequest): Promise<void> {
    const declared = req.headers['content-length'];
    await this.nars.putNar(name, req.body as Readable, declared ? Number(declared) : undefined);
  }

  @Delete(['nar/:name', 'upload/nar/:name'])
  @AllowVerb('delete')
  @HttpCode(204)
  async deleteNar(@Param('name') name: string): Promise<void> {
    await this.nars.deleteNar(name);
  }
}
