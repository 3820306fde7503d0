import { DynamicModule, Module } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { DatabaseModule } from 'src/database';
import { LockingModule } from 'src/locking';
import { PinsModule } from 'src/pins';
import { StorageModule } from 'src/storage';
import { LruMetricsModule } from './lru-metrics.module';
import { LruScheduler } from './lru.scheduler';
import { LruService } from './lru.service';

/**
 * LRU eviction. Imported as is, it only provides LruService (`ncps lru run`); `LruModule.scheduled()`
 * also runs it on `--cache-lru-schedule` (the server).
 */
@Module({
  imports: [DatabaseModule, StorageModule, LockingModule, PinsModule, LruMetricsModule],
  providers: [LruService],
  exports: [LruService, LruMetricsModule],
})
export class LruModule {
  static scheduled(): DynamicModule {
    return { module: LruModule, imports: [ScheduleModule.forRoot()], providers: [LruScheduler] };
  }
}
