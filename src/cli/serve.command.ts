import { Command } from 'commander';
import { Logger } from '@nestjs/common';
import { INestApplication } from '@nestjs/common';
import { createApp, listen } from 'src/app';
import { ignoreHangups, notifyReady } from 'src/lifecycle/service-manager';
import { addConfigOptions, configFromCommand } from './options';
import { compactStartupHeap, startupComplete } from './startup-heap';

export function registerServe(program: Command, env: NodeJS.ProcessEnv): void {
  const serve = program
    .command('serve')
    .description('Serve the binary cache (migrates the database first)')
    .action(async () => {
      const config = configFromCommand(serve, env);
      const app = await createApp(config);
      compactStartupHeap();
      const url = await listen(app, config);
      startupComplete();
      const logger = new Logger('Server');
      logger.log(
        {
          url,
          cache_hostname: config.cache.hostname,
          storage: config.storage.kind,
          database: config.database.dialect,
          lock_backend: config.lock.backend,
        },
        'ncps is serving',
      );
      exitGracefullyOn(['SIGTERM', 'SIGINT'], app, logger);
      ignoreHangups();
      await notifyReady(env, `serving on ${url}`);
    });
  addConfigOptions(serve);
}

/**
 * Rolling updates: on SIGTERM finish running downloads and in-flight responses (bounded by
 * --server-shutdown-timeout, see src/app/bootstrap.ts), release locks and connections, then exit 0.
 * A second signal exits at once.
 */
function exitGracefullyOn(signals: NodeJS.Signals[], app: INestApplication, logger: Logger): void {
  let closing = false;
  const handler = (signal: NodeJS.Signals) => {
    if (closing) process.exit(1);
    closing = true;
    logger.log({ signal }, 'shutting down: finishing in-flight work');
    app.close().then(
      () => process.exit(0),
      (e: unknown) => {
        logger.error({ err: e }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  for (const signal of signals) process.on(signal, handler);
}
