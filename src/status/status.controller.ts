import { Controller, Get, Res, UseGuards } from '@nestjs/common';
import { FastifyReply } from 'fastify';
import { TokenGuard } from 'src/cache';
import { renderStatusPage } from './status.render';
import { StatusService } from './status.service';

/** GET /status: an HTML page for people (behind the read token when one is set). */
@Controller()
@UseGuards(TokenGuard)
export class StatusController {
  constructor(private readonly status: StatusService) {}

  @Get('status')
  async page(@Res() reply: FastifyReply): Promise<void> {
    const html = renderStatusPage(await this.status.view());
    await reply.header('content-type', 'text/html; charset=utf-8').header('cache-control', 'no-store').send(html);
  }
}
