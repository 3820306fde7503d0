import { Controller, Get, Header, UseGuards } from '@nestjs/common';
import { TokenGuard } from 'src/auth';
import { InstanceIdentity } from './instance-identity';

/**
 * `GET /_ncps/instance`: this process's id, for the advertise URL self-check (AdvertiseCheck). Guarded
 * like the other internal routes (the get token, when one is set).
 */
@Controller('_ncps/instance')
@UseGuards(TokenGuard)
export class InstanceController {
  constructor(private readonly identity: InstanceIdentity) {}

  @Get()
  @Header('cache-control', 'no-store')
  instance(): { id: string } {
    return { id: this.identity.id };
  }
}
