import { NestFastifyApplication } from '@nestjs/platform-fastify';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildConfig } from 'src/config/build-config';
import { NcpsConfig } from 'src/config/config';
import { resolveOptions } from 'src/config/resolve';
import { createApp } from 'src/app';

export interface RunningApp {
  app: NestFastifyApplication;
  config: NcpsConfig;
  url: string;
  dataDir: string;
  close(): Promise<void>;
}

/**
 * Starts the real application in this process on a free loopback port, with the given flags
 * (as on the command line, without dashes) on top of a fresh data directory. Nothing reaches the
 * internet: the default upstream is replaced unless the test names one.
 */
export async function startApp(flags: Record<string, unknown> = {}): Promise<RunningApp> {
  const dataDir = await mkdtemp(join(tmpdir(), 'ncps-app-'));
  const config = await configOrCleanUp(dataDir, () =>
    resolveOptions({
      flags: {
        'server-addr': '127.0.0.1:0',
        'cache-data-dir': dataDir,
        'cache-temp-path': join(dataDir, 'tmp'),
        'cache-hostname': 'ncps-test',
        'cache-upstream-url': [],
        'cache-upstream-public-key': [],
        'log-level': process.env.NCPS_TEST_LOG_LEVEL ?? 'warn',
        ...flags,
      },
      env: {},
    }),
  );
  const app = await createApp(config);
  await app.listen(0, '127.0.0.1');
  const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
  return {
    app,
    config,
    url,
    dataDir,
    close: async () => {
      await app.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** A configuration refused (what some tests expect) leaves no data directory behind. */
async function configOrCleanUp(dataDir: string, resolve: () => ReturnType<typeof resolveOptions>): Promise<NcpsConfig> {
  try {
    return buildConfig(resolve());
  } catch (error) {
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }
}
