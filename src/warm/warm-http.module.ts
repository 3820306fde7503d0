import { Module } from '@nestjs/common';
import { WarmController } from './warm.controller';
import { WarmModule } from './warm.module';

/** `POST /warm`, for the server (the CLI uses WarmModule alone). */
@Module({ imports: [WarmModule], controllers: [WarmController] })
export class WarmHttpModule {}
