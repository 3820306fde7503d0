import { Command } from 'commander';
import { applyMigrations, createDataSource, pendingMigrations } from 'src/database';
import { addConfigOptions, configFromCommand } from './options';

export function registerMigrate(program: Command, env: NodeJS.ProcessEnv): void {
  const migrate = program.command('migrate').description('Manage the database schema');
  const up = migrate
    .command('up')
    .description('Apply pending migrations (serve also does this at start)')
    .option('--dry-run', 'only list the migrations that would run')
    .action(async (opts: { dryRun?: boolean }) => {
      const config = configFromCommand(up, env);
      const ds = createDataSource(config.database);
      await ds.initialize();
      try {
        const names = opts.dryRun ? (await pendingMigrations(ds)).pending : await applyMigrations(ds);
        const verb = opts.dryRun ? 'would apply' : 'applied';
        process.stdout.write(names.length ? names.map((n) => `${verb} ${n}\n`).join('') : 'database schema is up to date\n');
      } finally {
        await ds.destroy();
      }
    });
  addConfigOptions(up);
}
