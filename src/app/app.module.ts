import { DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { NcpsConfig } from 'src/config/config';
import { ConfigModule } from 'src/config/config.module';
import { CacheModule } from 'src/cache/cache.module';
import { DomainErrorFilter } from 'src/cache/domain-error.filter';
import { HealthModule } from 'src/health/health.module';
import { LruModule } from 'src/lru';
import { MetricsModule } from 'src/metrics/metrics.module';
import { PrometheusModule } from 'src/metrics/prometheus.module';
import { LoggingModule } from 'src/logging/logging.module';
import { PinsHttpModule } from 'src/pins';
import { StatusModule } from 'src/status';
import { TelemetryModule } from 'src/telemetry';
import { WarmHttpModule } from 'src/warm';

@Module({})
export class AppModule {
  static forRoot(config: NcpsConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(config),
        TelemetryModule,
        LoggingModule.forRoot(config),
        MetricsModule,
        HealthModule,
        CacheModule,
        LruModule.scheduled(),
        PinsHttpModule,
        WarmHttpModule,
        StatusModule,
        PrometheusModule,
      ],
      providers: [{ provide: APP_FILTER, useClass: DomainErrorFilter }],
    };
  }
}
