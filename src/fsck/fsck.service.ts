import { Inject, Injectable } from '@nestjs/common';
import { NcpsConfig } from 'src/config/config';
import { NCPS_CONFIG } from 'src/config/config.module';
import { NarFileRepository, NarInfoRepository } from 'src/database';
import { LockPort } from 'src/locking';
import { StoragePort } from 'src/storage';
import { FsckListener, FsckOptions, FsckSummary } from './fsck.findings';
import { FsckRun } from './fsck.run';

/** `ncps fsck`: finds (and with `repair`, removes) drift between the database and storage. */
@Injectable()
export class FsckService {
  constructor(
    @Inject(NCPS_CONFIG) private readonly config: NcpsConfig,
    private readonly narInfos: NarInfoRepository,
    private readonly narFiles: NarFileRepository,
    private readonly storage: StoragePort,
    private readonly locks: LockPort,
  ) {}

  run(options: FsckOptions, listener?: FsckListener): Promise<FsckSummary> {
    const { narInfos, narFiles, storage, locks } = this;
    return new FsckRun({ narInfos, narFiles, storage, locks, lockTtlMs: this.config.lock.downloadTtlMs }, options, listener).run();
  }
}
