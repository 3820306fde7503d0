import { Command, CommanderError } from 'commander';
import { ConfigError } from 'src/config/option';
import { registerServe } from './serve.command';
import { registerMigrate } from './migrate.command';
import { registerLru } from './lru.command';
import { registerPin } from './pin.command';
import { registerWarm } from './warm.command';
import { registerDocs } from './docs.command';
import { registerMigrateData } from './migrate-data.command';
import { registerFsck } from './fsck.command';
import { errorMessage } from 'src/common/error-fields';

/** The `ncps` program: `serve`, `migrate up`, ... Every command reads the same option table. */
export function buildProgram(env: NodeJS.ProcessEnv): Command {
  const program = new Command('ncps')
    .description('Nix Cache Proxy Server: a pull-through cache between Nix clients and upstream binary caches')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerServe(program, env);
  registerMigrate(program, env);
  registerLru(program, env);
  registerPin(program, env);
  registerWarm(program, env);
  registerMigrateData(program, env);
  registerFsck(program, env);
  registerDocs(program);
  return program;
}

/** Runs the CLI; returns the exit code for errors that ended it early. */
export async function runCli(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const program = buildProgram(env);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode;
    if (e instanceof ConfigError) {
      process.stderr.write(`ncps: configuration error: ${e.message}\n`);
      return 2;
    }
    process.stderr.write(`ncps: ${errorMessage(e)}\n`);
    return 1;
  }
}
