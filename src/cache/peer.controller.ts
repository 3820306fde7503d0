import { Controller, Get, Param, Res, UseGuards } from '@nestjs/common';
import { FastifyReply } from 'fastify';
import { NarService } from './nar.service';
import { TokenGuard } from './token.guard';

/**
 * Internal route for the other instances of a cluster: the bytes of a NAR this instance is
 * downloading, as they arrive (the last byte only once verified), or of the stored NAR.
 */
@Controller('_ncps/downloads/nar')
@UseGuards(TokenGuard)
export class PeerController {
  constructor(private readonly nars: NarService) {}

  @Get(':name')
  async stream(@Param('name') name: string, @Res() reply: FastifyReply): Promise<void> {
    const body = await this.nars.localNar(name);
    reply.header('content-type', 'application/x-nix-nar');
    if (body.size !== undefined) reply.header('content-length', body.size);
    await reply.send(body.stream);
  }
}
