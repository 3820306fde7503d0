import { Logger as NestLogger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { Logger } from 'nestjs-pino';
import { NcpsConfig } from 'src/config/config';
import { AppModule } from 'src/app.module';

/** Builds the Nest application on Fastify (not listening yet). Used by `ncps serve` and the tests. */
export async function createApp(config: NcpsConfig): Promise<NestFastifyApplication> {
  // HEAD is routed explicitly: an implicit HEAD would run the GET handler and could start a download.
  const adapter = new FastifyAdapter({ exposeHeadRoutes: false, maxParamLength: 256 });
  const fastify = adapter.getInstance();
  // Bodies are handed to handlers as streams: NARs are never buffered, narinfos are read with a limit.
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser('*', (_req, payload, done) => done(null, payload));
  const app = await NestFactory.create<NestFastifyApplication>(AppModule.forRoot(config), adapter, {
    bufferLogs: true,
  });
  app.useLogger(app.get(Logger));
  app.enableShutdownHooks();
  for (const warning of config.warnings) new NestLogger('Config').warn(warning);
  return app;
}

/** Listens on the configured address; an empty host means every interface (IPv6 and IPv4 when available). */
export async function listen(app: NestFastifyApplication, config: NcpsConfig): Promise<string> {
  const { host, port } = config.server;
  if (host) {
    await app.listen(port, host);
  } else {
    await app.listen(port, '::').catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'EAFNOSUPPORT' && e.code !== 'EADDRNOTAVAIL') throw e;
      return app.listen(port, '0.0.0.0');
    });
  }
  return app.getUrl();
}
