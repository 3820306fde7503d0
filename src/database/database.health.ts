import { Injectable } from '@nestjs/common';
import { HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import { DataSource } from 'typeorm';
import { withTimeout } from 'src/common/deadline';

/** /health: the database answers a trivial query within a short time. */
@Injectable()
export class DatabaseHealthIndicator {
  constructor(
    private readonly dataSource: DataSource,
    private readonly health: HealthIndicatorService,
  ) {}

  async check(timeoutMs = 2000): Promise<HealthIndicatorResult> {
    const indicator = this.health.check('database');
    const dialect = this.dataSource.options.type;
    try {
      await withTimeout(this.dataSource.query('SELECT 1'), timeoutMs, `no answer within ${timeoutMs} ms`);
      return indicator.up({ dialect });
    } catch (e) {
      return indicator.down({ dialect, message: `database unreachable: ${(e as Error).message}` });
    }
  }
}
