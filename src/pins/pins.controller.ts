import { CanActivate, Controller, Delete, Get, HttpCode, Inject, Injectable, Param, Post, Query, UseGuards } from '@nestjs/common';
import { TokenGuard } from 'src/auth';
import { MethodNotAllowedError } from 'src/common/errors';
import { NcpsConfig } from 'src/config/config';
import { NCPS_CONFIG } from 'src/config/config.module';
import { parsePinName } from './pin-target';
import { parseTtl } from './pin-ttl';
import { PinView, PinsService } from './pins.service';

/**
 * Pins defeat the size limit, so unlike PUT they are never open to anonymous clients: over HTTP they
 * need a put token to be configured (the CLI, run by whoever holds the database, always may).
 */
@Injectable()
class PinWritesNeedAToken implements CanActivate {
  constructor(@Inject(NCPS_CONFIG) private readonly config: NcpsConfig) {}

  canActivate(): boolean {
    if (!this.config.cache.putToken) {
      throw new MethodNotAllowedError('pinning over HTTP needs a put token (--cache-put-token or --cache-get-token)');
    }
    return true;
  }
}

/**
 * `POST|DELETE /pin/<hash>.narinfo` (put token) and `GET /pins` (read token when one is set).
 * `/pins` is a static route, which Fastify prefers to the narinfo routes' `/:name`.
 */
@Controller()
@UseGuards(TokenGuard)
export class PinsController {
  constructor(private readonly pins: PinsService) {}

  @Get('pins')
  list(): Promise<PinView[]> {
    return this.pins.list();
  }

  /** `?ttl=30d` pins for that long; without it the pin lasts until removed. Pinning again renews it. */
  @Post('pin/:name')
  @UseGuards(PinWritesNeedAToken)
  @HttpCode(200)
  pin(@Param('name') name: string, @Query('ttl') ttl?: string): Promise<PinView> {
    const hash = parsePinName(name);
    return this.pins.pin(hash, ttl === undefined ? undefined : parseTtl(ttl));
  }

  @Delete('pin/:name')
  @UseGuards(PinWritesNeedAToken)
  @HttpCode(204)
  async unpin(@Param('name') name: string): Promise<void> {
    await this.pins.unpin(parsePinName(name));
  }
}
