import { DynamicModule, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { Logger } from 'nestjs-pino';
import { readFile } from 'node:fs/promises';
import { NcpsConfig } from 'src/config/config';
import { ConfigModule } from 'src/config/config.module';
import { LoggingModule } from 'src/logging/logging.module';
import { MetricsModule } from 'src/metrics/metrics.module';
import {
  DEFAULT_WARM_CONCURRENCY,
  InvalidEntry,
  MAX_WARM_CONCURRENCY,
  WarmModule,
  WarmProgress,
  WarmService,
  WarmTargets,
  parseWarmTarget,
  parseWarmTargets,
  warmLines,
} from 'src/warm';
import { addConfigOptions, configFromCommand } from './options';

/** Exit status of a usage error (runCli maps ConfigError to it too); 1 means some path was not warmed. */
const USAGE_ERROR = 2;

/** What `ncps warm` needs: the cache's miss path and what it stands on, without HTTP. */
@Module({})
class WarmCommandModule {
  static forRoot(config: NcpsConfig): DynamicModule {
    return {
      module: WarmCommandModule,
      imports: [ConfigModule.forRoot(config), LoggingModule.forRoot(config), MetricsModule, WarmModule],
    };
  }
}

export function registerWarm(program: Command, env: NodeJS.ProcessEnv): void {
  const warm = program
    .command('warm')
    .description(
      'Fetch the whole closures of store paths into the cache (as clients would, at prefetch priority), ' +
        'with the configuration of `ncps serve`. Exit 0 when every path is stored, 1 when some could not be fetched, 2 on a usage error',
    )
    .argument('<paths...>', 'store paths or their hashes, files with one per line, or - for standard input')
    .option('--concurrency <n>', `paths fetched at once (1-${MAX_WARM_CONCURRENCY})`, parseConcurrency, DEFAULT_WARM_CONCURRENCY)
    .exitOverride((err) => {
      throw err.exitCode === 0 ? err : new CommanderError(USAGE_ERROR, err.code, err.message);
    })
    .action(async (args: string[], opts: { concurrency: number }) => {
      // Warnings only, unless a log level is set: the per-path lines of the miss path would bury the progress.
      const config = configFromCommand(warm, { LOG_LEVEL: 'warn', ...env });
      const targets = await readTargets(args);
      const app = await NestFactory.createApplicationContext(WarmCommandModule.forRoot(config), {
        bufferLogs: true,
        // A failed start is reported by runCli ("ncps: ...", exit 1) like any other error, not by Nest exiting.
        abortOnError: false,
      });
      app.useLogger(app.get(Logger));
      try {
        const progress = new WarmProgress(process.stderr);
        const { walk, done } = app.get(WarmService).begin(targets, {
          concurrency: opts.concurrency,
          onPath: (outcome) => progress.path(outcome),
        });
        progress.follow(walk);
        const summary = await done;
        process.stdout.write(`${progress.finish(summary, walk)}\n`);
        if (summary.failed > 0) throw new Error(`${summary.failed} of ${summary.total} paths could not be warmed`);
      } finally {
        await app.close();
      }
    });
  addConfigOptions(warm);
}

function parseConcurrency(text: string): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < 1 || value > MAX_WARM_CONCURRENCY) {
    throw new InvalidArgumentError(`a whole number from 1 to ${MAX_WARM_CONCURRENCY}`);
  }
  return value;
}

/**
 * The arguments → what to warm: a store path or hash names itself; `-` reads standard input and any
 * other argument a file, one entry per line. An unreadable file counts as an invalid entry.
 */
async function readTargets(args: readonly string[]): Promise<WarmTargets> {
  const entries: string[] = [];
  const unreadable: InvalidEntry[] = [];
  for (const arg of args) {
    if (parseWarmTarget(arg)) {
      entries.push(arg);
      continue;
    }
    try {
      entries.push(...warmLines(arg === '-' ? await readStdin() : await readFile(arg, 'utf8')));
    } catch (e) {
      const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
      unreadable.push({ entry: arg, reason: `neither a store path, a store path hash nor a readable file (${why})` });
    }
  }
  const targets = parseWarmTargets(entries);
  return { hashes: targets.hashes, invalid: [...targets.invalid, ...unreadable] };
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
