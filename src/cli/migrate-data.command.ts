import { Command } from 'commander';
import { databaseDialect } from 'src/config/build-config';
import { migrateDatabase } from 'src/database';
import { createStorage, migrateStorage, parseStorageLocation } from 'src/storage';
import { addConfigOptions, configFromCommand } from './options';

const log = (line: string) => void process.stdout.write(`${line}\n`);

/**
 * Moving a cache between backends (the Go ncps's migration guide as two commands):
 * `ncps migrate-database --from URL --to URL` and `ncps migrate-storage --from local:DIR --to s3`.
 */
export function registerMigrateData(program: Command, env: NodeJS.ProcessEnv): void {
  program
    .command('migrate-database')
    .description(
      'Copy all metadata (narinfos, NAR files, config incl. the signing key, pins, listings/logs/realisations) between databases; resumable',
    )
    .requiredOption('--from <URL>', 'source database URL (sqlite:PATH, postgresql://..., mysql://...)')
    .requiredOption('--to <URL>', 'target database URL; its schema is migrated first')
    .action(async (opts: { from: string; to: string }) => {
      const pool = { poolMaxOpen: 2, poolMaxIdle: 1 };
      const config = (url: string) => ({ url, dialect: databaseDialect(url), ...pool });
      const report = await migrateDatabase(config(opts.from), config(opts.to), { log });
      for (const [table, counts] of Object.entries(report)) log(`${table}: ${counts.source} in source, ${counts.target} in target`);
    });

  const storage = program
    .command('migrate-storage')
    .description('Copy every stored object between storage backends, verifying sizes; resumable')
    .requiredOption('--from <LOCATION>', 'local:DIR, or s3 (the bucket of the --cache-storage-s3-* options)')
    .requiredOption('--to <LOCATION>', 'local:DIR, or s3')
    .option('--dry-run', 'only count what would be copied')
    .action(async (opts: { from: string; to: string; dryRun?: boolean }) => {
      const config = configFromCommand(storage, env);
      const s3 = config.storage.kind === 's3' ? config.storage.s3 : undefined;
      const [from, to] = [parseStorageLocation(opts.from, s3), parseStorageLocation(opts.to, s3)];
      if (from.kind === 'local') {
        const { existsSync } = await import('node:fs');
        if (!existsSync(from.path)) throw new Error(`--from: ${from.path} does not exist`);
      }
      const [source, target] = await Promise.all([createStorage(from), createStorage(to)]);
      try {
        const result = await migrateStorage(source, target, { log, dryRun: opts.dryRun });
        log(`copied ${result.copied}, skipped ${result.skipped}, failed ${result.failed}, ${result.bytes} bytes`);
        if (result.failed > 0) throw new Error(`${result.failed} objects could not be copied (see above)`);
      } finally {
        await Promise.all([source.close(), target.close()]);
      }
    });
  // The S3 options say which bucket "s3" means; everything else in the table is ignored here.
  addConfigOptions(storage);
}
