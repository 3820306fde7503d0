import { Controller, Get, Header, Inject, UseGuards } from '@nestjs/common';
import { NCPS_CONFIG } from 'src/config/config.module';
import { NcpsConfig } from 'src/config/config';
import { SigningKeyService } from 'src/signing';
import { TokenGuard } from './token.guard';

/** Lower than cache.nixos.org's 40, so clients prefer this cache when both are configured. */
export const CACHE_PRIORITY = 10;

@Controller()
export class InfoController {
  constructor(
    @Inject(NCPS_CONFIG) private readonly config: NcpsConfig,
    private readonly signing: SigningKeyService,
  ) {}

  @Get()
  root(): { hostname: string; publicKey: string } {
    return { hostname: this.config.cache.hostname, publicKey: this.signing.publicKey };
  }

  @Get(['nix-cache-info', 'upload/nix-cache-info'])
  @UseGuards(TokenGuard)
  @Header('content-type', 'text/x-nix-cache-info')
  cacheInfo(): string {
    return `StoreDir: /nix/store\nWantMassQuery: 1\nPriority: ${CACHE_PRIORITY}\n`;
  }

  /** Cheap on purpose: load balancers probe it. */
  @Get('pubkey')
  @Header('content-type', 'text/plain; charset=utf-8')
  pubkey(): string {
    return this.signing.publicKey;
  }
}
