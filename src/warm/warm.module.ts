import { Module } from '@nestjs/common';
import { CacheModule } from 'src/cache/cache.module';
import { DatabaseModule } from 'src/database';
import { StorageModule } from 'src/storage';
import { PathWarmer } from './path-warmer';
import { WarmMetrics } from './warm.metrics';
import { WarmService } from './warm.service';

/** Warming, for the server and for `ncps warm` (needs the global ConfigModule, logging and MetricsModule). */
@Module({
  imports: [CacheModule, DatabaseModule, StorageModule],
  providers: [WarmService, PathWarmer, WarmMetrics],
  exports: [WarmService],
})
export class WarmModule {}
