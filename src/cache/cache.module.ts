import { Module } from '@nestjs/common';
import { DatabaseModule } from 'src/database';
import { SigningModule } from 'src/signing';
import { StorageModule } from 'src/storage';
import { AccessTracker } from './access-tracker.service';
import { CacheController } from './cache.controller';
import { CacheService } from './cache.service';
import { InfoController } from './info.controller';

@Module({
  imports: [DatabaseModule, StorageModule, SigningModule],
  // InfoController first: its static routes must not be shadowed by the catch-all :name routes.
  controllers: [InfoController, CacheController],
  providers: [CacheService, AccessTracker],
  exports: [CacheService],
})
export class CacheModule {}
