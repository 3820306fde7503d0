import { Controller, Get, Headers, Param, Res, UseGuards } from '@nestjs/common';
import { FastifyReply } from 'fastify';
import { InstanceIdentity } from 'src/cluster';
import { PEER_INSTANCE_HEADER } from './download/peer-stream.service';
import { NarService } from './nar.service';
import { TokenGuard } from 'src/auth';

/**
 * Internal route for the other instances of a cluster: the bytes of a NAR this instance is
 * downloading, as they arrive (the last byte only once verified), or of the stored NAR.
 */
@Controller('_ncps/downloads/nar')
@UseGuards(TokenGuard)
export class PeerController {
  constructor(
    private readonly nars: NarService,
    private readonly identity: InstanceIdentity,
  ) {}

  @Get(':name')
  async stream(
    @Param('name') name: string,
    @Headers(PEER_INSTANCE_HEADER) wanted: string | undefined,
    @Res() reply: FastifyReply,
  ): Promise<void> {
    // Asked for another instance (its advertise URL reached this one instead): say so at once, so the
    // asking instance waits for the download itself rather than for whatever this one would answer.
    if (wanted !== undefined && wanted !== this.identity.id) {
      await reply.status(421).header('content-type', 'text/plain; charset=utf-8').send('not the instance that announced this download\n');
      return;
    }
    const body = await this.nars.localNar(name);
    reply.header('content-type', 'application/x-nix-nar');
    if (body.size !== undefined) reply.header('content-length', body.size);
    await reply.send(body.stream);
  }
}
