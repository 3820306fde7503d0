import { DynamicModule, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Command, CommanderError } from 'commander';
import { Logger, LoggerModule } from 'nestjs-pino';
import { destination } from 'pino';
import { NcpsConfig } from 'src/config/config';
import { ConfigModule } from 'src/config/config.module';
import { FsckModule, FsckReporter, FsckService } from 'src/fsck';
import { loggerOptions } from 'src/logging/logger.options';
import { MetricsModule } from 'src/metrics/metrics.module';
import { addConfigOptions, configFromCommand } from './options';

/** What `ncps fsck` needs: database, storage and locks, without HTTP, schedules or upstreams. */
@Module({})
class FsckCommandModule {
  static forRoot(config: NcpsConfig): DynamicModule {
    // Logs go to stderr as JSON lines: stdout carries the findings (and, with --json, only the report).
    const logging = LoggerModule.forRoot({ pinoHttp: [loggerOptions(config, { tty: false }).pinoHttp, destination(2)] });
    return { module: FsckCommandModule, imports: [ConfigModule.forRoot(config), logging, MetricsModule, FsckModule] };
  }
}

interface FsckFlags {
  repair?: boolean;
  verifyContent?: boolean;
  json?: boolean;
}

/** Exit status when problems were found and are still there (not repaired, or in use). */
const PROBLEMS_LEFT = 1;
/** Exit status of a usage or configuration error (runCli maps ConfigError to it too). */
const USAGE_ERROR = 2;

export function registerFsck(program: Command, env: NodeJS.ProcessEnv): void {
  const fsck = program
    .command('fsck')
    .description(
      'Check the database against storage: NAR files whose object is missing or of the wrong size, objects nothing refers to, ' +
        'uploaded narinfos whose NAR is gone. Safe while instances serve. Exit 0 when clean (or all repaired), 1 when problems are left, 2 on a usage error',
    )
    .option('--repair', 'delete what cannot be served (never what is being downloaded, uploaded or read) and record untracked objects')
    .option('--verify-content', 'also stream every stored NAR through sha256 and compare it with its FileHash (reads everything)')
    .option('--json', 'print one JSON summary on stdout instead of lines')
    .exitOverride((err) => {
      throw err.exitCode === 0 ? err : new CommanderError(USAGE_ERROR, err.code, err.message);
    })
    .action(async (flags: FsckFlags) => {
      const config = configFromCommand(fsck, env);
      const options = { repair: flags.repair === true, verifyContent: flags.verifyContent === true };
      const app = await NestFactory.createApplicationContext(FsckCommandModule.forRoot(config), {
        bufferLogs: true,
        // A failed start is reported by runCli ("ncps: ...", exit 1) like any other error, not by Nest exiting.
        abortOnError: false,
      });
      app.useLogger(app.get(Logger));
      let clean: boolean;
      try {
        const reporter = new FsckReporter({ stdout: process.stdout, stderr: process.stderr }, flags.json === true);
        const summary = await app.get(FsckService).run(options, reporter);
        reporter.summary(summary, options);
        clean = summary.clean;
      } finally {
        await app.close();
      }
      // Not an error message: the findings are already printed. runCli returns this status.
      if (!clean) throw new CommanderError(PROBLEMS_LEFT, 'ncps.fsck.problemsLeft', '');
    });
  addConfigOptions(fsck);
}
