import { Command } from 'commander';
import { migrateUp } from 'src/database';
import { addConfigOptions, configFromCommand } from './options';

export function registerMigrate(program: Command, env: NodeJS.ProcessEnv): void {
  const migrate = program.command('migrate').description('Manage the database schema');
  const up = migrate
    .command('up')
    .description('Apply pending migrations under a lock (serve also does this at start)')
    .option('--dry-run', 'only list the migrations that would run')
    .action(async (opts: { dryRun?: boolean }) => {
      const config = configFromCommand(up, env);
      const result = await migrateUp(config.database, { dryRun: Boolean(opts.dryRun) });
      const [verb, names] = 'pending' in result ? ['would apply', result.pending] : ['applied', result.applied];
      process.stdout.write(names.length ? names.map((n) => `${verb} ${n}\n`).join('') : 'database schema is up to date\n');
    });
  addConfigOptions(up);
}
