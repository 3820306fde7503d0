import { Command } from 'commander';
import { Logger } from '@nestjs/common';
import { createApp, listen } from 'src/bootstrap';
import { addConfigOptions, configFromCommand } from './options';

export function registerServe(program: Command, env: NodeJS.ProcessEnv): void {
  const serve = program
    .command('serve')
    .description('Serve the binary cache (migrates the database first)')
    .action(async () => {
      const config = configFromCommand(serve, env);
      const app = await createApp(config);
      const url = await listen(app, config);
      new Logger('Server').log(
        { url, hostname: config.cache.hostname, storage: config.storage.kind, database: config.database.dialect, lock_backend: config.lock.backend },
        'ncps is serving',
      );
    });
  addConfigOptions(serve);
}
