import { Module } from '@nestjs/common';
import { DatabaseModule } from 'src/database';
import { PinRepository } from './pin.repository';
import { PinsService } from './pins.service';

/** Pins and the closures they protect; the LRU asks PinsService what it must keep. */
@Module({
  imports: [DatabaseModule],
  providers: [PinRepository, PinsService],
  exports: [PinsService],
})
export class PinsModule {}
