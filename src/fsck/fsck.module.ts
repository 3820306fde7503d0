import { Module } from '@nestjs/common';
import { DatabaseModule } from 'src/database';
import { LockingModule } from 'src/locking';
import { StorageModule } from 'src/storage';
import { FsckService } from './fsck.service';

/** Consistency checks between the database and storage (`ncps fsck`). */
@Module({
  imports: [DatabaseModule, StorageModule, LockingModule],
  providers: [FsckService],
  exports: [FsckService],
})
export class FsckModule {}
