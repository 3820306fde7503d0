import { DynamicModule, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Command } from 'commander';
import { Logger, LoggerModule } from 'nestjs-pino';
import { NcpsConfig } from 'src/config/config';
import { ConfigModule } from 'src/config/config.module';
import { ConfigError } from 'src/config/option';
import { loggerOptions } from 'src/logging/logger.options';
import { LruModule, type LruRunResult, LruService } from 'src/lru';
import { MetricsModule } from 'src/metrics/metrics.module';
import { addConfigOptions, configFromCommand } from './options';

/** What `ncps lru run` needs: the LRU and what it stands on, without HTTP or the schedule. */
@Module({})
class LruCommandModule {
  static forRoot(config: NcpsConfig): DynamicModule {
    return {
      module: LruCommandModule,
      imports: [ConfigModule.forRoot(config), LoggerModule.forRoot(loggerOptions(config)), MetricsModule, LruModule],
    };
  }
}

export function registerLru(program: Command, env: NodeJS.ProcessEnv): void {
  const lru = program.command('lru').description('Least-recently-used eviction down to --cache-max-size');
  const run = lru
    .command('run')
    .description('Run one eviction pass now, under the cluster-wide LRU lock (as the schedule would)')
    .action(async () => {
      const config = configFromCommand(run, env);
      if (config.cache.maxSizeBytes === undefined) {
        throw new ConfigError('ncps lru run needs --cache-max-size (or CACHE_MAX_SIZE, cache.max-size)');
      }
      const app = await NestFactory.createApplicationContext(LruCommandModule.forRoot(config), {
        bufferLogs: true,
        // A failed start is reported by runCli ("ncps: ...", exit 1) like any other error, not by Nest exiting.
        abortOnError: false,
      });
      app.useLogger(app.get(Logger));
      try {
        const result = await app.get(LruService).runOnce();
        process.stdout.write(`${describeRun(result, config.cache.maxSizeBytes)}\n`);
      } finally {
        await app.close();
      }
    });
  addConfigOptions(run);
}

function describeRun(result: LruRunResult, maxSize: number): string {
  if (!result.ran) return 'another instance is running LRU; nothing done';
  const { evictedEntries, evictedNarFiles, evictedBytes, sizeBefore, sizeAfter } = result;
  return (
    `evicted ${evictedEntries} narinfos and ${evictedNarFiles} NAR files (${evictedBytes} bytes); ` +
    `stored size ${sizeBefore} → ${sizeAfter} bytes, limit ${maxSize}` +
    (result.interrupted ? ' (stopped early: the LRU lock was lost)' : '')
  );
}
