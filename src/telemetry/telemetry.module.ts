import { Global, Injectable, Module, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { FastifyInstance } from 'fastify';
import { NcpsConfig } from 'src/config/config';
import { NCPS_CONFIG } from 'src/config/config.module';
import { DISABLED_TRACING, Tracing } from './tracing';

/**
 * The Tracing of `config`: the OpenTelemetry SDK is loaded here, and only here, when `--otel-enabled`
 * is set; otherwise no OpenTelemetry package is loaded and nothing is ever sent anywhere.
 */
export async function createTracing(config: Pick<NcpsConfig, 'otel'>): Promise<Tracing> {
  if (!config.otel?.enabled) return DISABLED_TRACING;
  const { OtelTracing } = await import('./otel.tracing');
  return new OtelTracing({ endpoint: config.otel.endpoint });
}

/** Traces the HTTP server's requests, and sends the last spans when the application closes. */
@Injectable()
class RequestSpans implements OnModuleInit, OnApplicationShutdown {
  constructor(
    private readonly tracing: Tracing,
    private readonly adapterHost: HttpAdapterHost,
  ) {}

  onModuleInit(): void {
    // Disabled: no hook at all, so requests pay nothing.
    if (!this.tracing.enabled) return;
    const fastify = this.adapterHost.httpAdapter?.getInstance<FastifyInstance>();
    if (fastify) this.tracing.traceRequests(fastify);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.tracing.shutdown();
  }
}

/** Provides Tracing to every module (services inject it; see tracing.ts). */
@Global()
@Module({
  providers: [{ provide: Tracing, inject: [NCPS_CONFIG], useFactory: (config: NcpsConfig) => createTracing(config) }, RequestSpans],
  exports: [Tracing],
})
export class TelemetryModule {}
