import { Controller, Get, Inject, Req, Res } from '@nestjs/common';
import { FastifyReply, FastifyRequest } from 'fastify';
import { AccessTokens } from 'src/auth';
import { UnauthorizedError } from 'src/common/errors';
import { NcpsConfig } from 'src/config/config';
import { NCPS_CONFIG } from 'src/config/config.module';
import { renderStatusPage } from './status.render';
import { StatusService } from './status.service';

/**
 * GET /status: an HTML page for people, behind the read token when one is set (Bearer, or Basic with
 * any user name and the token as password). Its 401 challenges with Basic alone: browsers (Chromium
 * at least) do not parse the cache routes' combined `Bearer, Basic realm=…` challenge, so they would
 * neither prompt nor use credentials given in the URL.
 */
@Controller()
export class StatusController {
  private readonly tokens: AccessTokens;

  constructor(
    private readonly status: StatusService,
    @Inject(NCPS_CONFIG) config: NcpsConfig,
  ) {
    this.tokens = new AccessTokens(config.cache);
  }

  @Get('status')
  async page(@Req() req: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    try {
      this.tokens.check('GET', req.headers.authorization);
    } catch (e) {
      if (!(e instanceof UnauthorizedError)) throw e;
      await reply
        .status(401)
        .header('www-authenticate', 'Basic realm="ncps"')
        .header('content-type', 'text/plain; charset=utf-8')
        .send(`${e.message}\n`);
      return;
    }
    const html = renderStatusPage(await this.status.view());
    await reply.header('content-type', 'text/html; charset=utf-8').header('cache-control', 'no-store').send(html);
  }
}
