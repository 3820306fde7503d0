import { Module } from '@nestjs/common';
import { PinsController } from './pins.controller';
import { PinsModule } from './pins.module';

/** The pin routes, for the server (the CLI and the LRU use PinsModule alone). */
@Module({ imports: [PinsModule], controllers: [PinsController] })
export class PinsHttpModule {}
