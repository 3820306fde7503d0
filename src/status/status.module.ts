import { Module } from '@nestjs/common';
import { CacheModule } from 'src/cache/cache.module';
import { HealthModule } from 'src/health/health.module';
import { LruMetricsModule } from 'src/lru';
import { StatusController } from './status.controller';
import { StatusService } from './status.service';

/** GET /status (see StatusController); needs the global MetricsModule and ConfigModule. */
@Module({
  imports: [CacheModule, HealthModule, LruMetricsModule],
  controllers: [StatusController],
  providers: [StatusService],
})
export class StatusModule {}
