import { DynamicModule, Global, Inject, Injectable, Module, OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { FastifyInstance } from 'fastify';
import { Logger, PARAMS_PROVIDER_TOKEN, PinoLogger } from 'nestjs-pino';
import pino from 'pino';
import { NcpsConfig } from 'src/config/config';
import { frontDoorOf } from 'src/common/front-door';
import { Tracing } from 'src/telemetry';
import { RequestLogOptions, loggerOptions } from './logger.options';
import { RequestContexts, logRequests } from './request-logging';

const ROOT_LOGGER = Symbol('ROOT_LOGGER');
const REQUEST_LOG_OPTIONS = Symbol('REQUEST_LOG_OPTIONS');

/** Hooks request logging into the HTTP server, when there is one. */
@Injectable()
class RequestLogging implements OnModuleInit {
  constructor(
    @Inject(ROOT_LOGGER) private readonly root: pino.Logger,
    @Inject(REQUEST_LOG_OPTIONS) private readonly options: RequestLogOptions,
    private readonly contexts: RequestContexts,
    private readonly adapterHost: HttpAdapterHost,
  ) {}

  onModuleInit(): void {
    const fastify = this.adapterHost.httpAdapter?.getInstance<FastifyInstance>();
    if (fastify) logRequests(fastify, this.root, this.contexts, this.options, frontDoorOf(fastify.server));
  }
}

/**
 * One pino logger for the application: Nest's Logger writes to it through nestjs-pino (inside a
 * request, through a child with the request's id), and each request's end is logged by logRequests.
 * Instead of nestjs-pino's LoggerModule, whose pino-http middleware builds a serialized child
 * logger for every request whether it logs or not.
 */
@Global()
@Module({})
export class LoggingModule {
  static forRoot(config: NcpsConfig): DynamicModule {
    const { customLogLevel, customSuccessMessage, customErrorMessage, autoLogging, ...options } = loggerOptions(config).pinoHttp;
    return {
      module: LoggingModule,
      providers: [
        // With tracing on, each line written inside a span carries its trace_id and span_id.
        {
          provide: ROOT_LOGGER,
          inject: [{ token: Tracing, optional: true }],
          useFactory: (tracing?: Tracing) => pino(tracing?.enabled ? { ...options, mixin: () => tracing.logFields() ?? {} } : options),
        },
        { provide: REQUEST_LOG_OPTIONS, useValue: { customLogLevel, customSuccessMessage, customErrorMessage, autoLogging } },
        // nestjs-pino writes lines outside requests to a logger passed this way.
        { provide: PARAMS_PROVIDER_TOKEN, useFactory: (logger: pino.Logger) => ({ pinoHttp: { logger } }), inject: [ROOT_LOGGER] },
        { provide: RequestContexts, useFactory: (logger: pino.Logger) => new RequestContexts(logger), inject: [ROOT_LOGGER] },
        PinoLogger,
        Logger,
        RequestLogging,
      ],
      exports: [Logger, PinoLogger, RequestContexts],
    };
  }
}
