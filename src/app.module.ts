import { DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { LoggerModule } from 'nestjs-pino';
import { NcpsConfig } from 'src/config/config';
import { ConfigModule } from 'src/config/config.module';
import { CacheModule } from 'src/cache/cache.module';
import { DomainErrorFilter } from 'src/cache/domain-error.filter';
import { HealthModule } from 'src/health/health.module';
import { LruModule } from 'src/lru';
import { MetricsModule } from 'src/metrics/metrics.module';
import { PrometheusModule } from 'src/metrics/prometheus.module';
import { loggerOptions } from 'src/logging/logger.options';

@Module({})
export class AppModule {
  static forRoot(config: NcpsConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(config),
        LoggerModule.forRoot(loggerOptions(config)),
        MetricsModule,
        HealthModule,
        CacheModule,
        LruModule.scheduled(),
        PrometheusModule,
      ],
      providers: [{ provide: APP_FILTER, useClass: DomainErrorFilter }],
    };
  }
}
