import { Controller, Get, Header, Inject, UseGuards } from '@nestjs/common';
import { NCPS_CONFIG } from 'src/config/config.module';
import { NcpsConfig } from 'src/config/config';
import { SigningKeyService } from 'src/signing';
import { TokenGuard } from 'src/auth';

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
    // WantMassQuery: 1, as the Go ncps: a local proxy is cheap to ask about many paths at once.
    return `StoreDir: /nix/store\nWantMassQuery: 1\nPriority: ${this.config.cache.priority}\n`;
  }

  /** Cheap on purpose: load balancers probe it. */
  @Get('pubkey')
  @Header('content-type', 'text/plain; charset=utf-8')
  pubkey(): string {
    return this.signing.publicKey;
  }
}
