import { Injectable } from '@nestjs/common';
import { HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import { errorMessage } from 'src/common/error-fields';
import { StoragePort } from './storage.port';

/** /health: the storage backend's own cheap probe (a tiny file locally, HeadBucket on S3). */
@Injectable()
export class StorageHealthIndicator {
  constructor(
    private readonly storage: StoragePort,
    private readonly health: HealthIndicatorService,
  ) {}

  async check(): Promise<HealthIndicatorResult> {
    const indicator = this.health.check('storage');
    const kind = this.storage.kind;
    try {
      await this.storage.check();
      return indicator.up({ kind });
    } catch (error) {
      return indicator.down({ kind, message: errorMessage(error) });
    }
  }
}
