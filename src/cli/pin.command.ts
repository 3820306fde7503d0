import { DynamicModule, INestApplicationContext, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Command } from 'commander';
import { Logger, LoggerModule } from 'nestjs-pino';
import { NcpsConfig } from 'src/config/config';
import { ConfigModule } from 'src/config/config.module';
import { loggerOptions } from 'src/logging/logger.options';
import { PinView, PinsModule, PinsService, parsePinTarget, parseTtl } from 'src/pins';
import { addConfigOptions, configFromCommand } from './options';

/** What `ncps pin` needs: the database and the pins, nothing else of the server. */
@Module({})
class PinCommandModule {
  static forRoot(config: NcpsConfig): DynamicModule {
    return { module: PinCommandModule, imports: [ConfigModule.forRoot(config), LoggerModule.forRoot(loggerOptions(config)), PinsModule] };
  }
}

/** Runs `work` with PinsService on the configured database and prints what it returns. */
async function withPins(command: Command, env: NodeJS.ProcessEnv, work: (pins: PinsService) => Promise<string>): Promise<void> {
  const config = configFromCommand(command, env);
  let app: INestApplicationContext | undefined;
  try {
    app = await NestFactory.createApplicationContext(PinCommandModule.forRoot(config), { bufferLogs: true, abortOnError: false });
    app.useLogger(app.get(Logger));
    process.stdout.write(`${await work(app.get(PinsService))}\n`);
  } finally {
    await app?.close();
  }
}

const describePin = (pin: PinView): string =>
  `${pin.hash}  ${pin.expiresAt ? `expires ${pin.expiresAt}${pin.active ? '' : ' (expired)'}` : 'no expiry'}  ${pin.stored ? 'stored' : 'not stored yet'}`;

export function registerPin(program: Command, env: NodeJS.ProcessEnv): void {
  const pin = program.command('pin').description('Pins: store paths whose whole closure the LRU never evicts');

  const add = pin
    .command('add')
    .description('Pin a store path (or hash) and its closure; pinning again renews the pin')
    .argument('<path>', 'store path, its base name, or its hash')
    .option('--ttl <duration>', 'unpin after this long (e.g. 30d, 2w, 12h); default: never')
    .action(async (path: string, opts: { ttl?: string }) => {
      const hash = parsePinTarget(path);
      const ttlMs = opts.ttl === undefined ? undefined : parseTtl(opts.ttl);
      await withPins(add, env, async (pins) => `pinned ${describePin(await pins.pin(hash, ttlMs))}`);
    });
  addConfigOptions(add);

  const rm = pin
    .command('rm')
    .description('Remove the pin of a store path (the LRU may then evict its closure)')
    .argument('<path>', 'store path, its base name, or its hash')
    .action(async (path: string) => {
      const hash = parsePinTarget(path);
      await withPins(rm, env, async (pins) => {
        await pins.unpin(hash);
        return `unpinned ${hash}`;
      });
    });
  addConfigOptions(rm);

  const ls = pin
    .command('ls')
    .description('List the pins')
    .action(async () => {
      await withPins(ls, env, async (pins) => {
        const all = await pins.list();
        return all.length === 0 ? 'no pins' : all.map(describePin).join('\n');
      });
    });
  addConfigOptions(ls);
}
