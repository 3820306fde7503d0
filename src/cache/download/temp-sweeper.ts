import { Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { NCPS_CONFIG } from 'src/config/config.module';
import { NcpsConfig } from 'src/config/config';

/** Temp files of downloads and uploads (see Download). */
const TEMP_FILE = /^ncps-dl-.+\.tmp$/;

/**
 * Removes, at start, the temp files that a crashed or killed run left behind (a clean run removes
 * its own). Assumes each instance has its own temp path, as by default (the OS temp dir of its
 * machine or container); should several share one, only files untouched since this process started
 * go — a running download writes to its file as bytes arrive, so only a stalled one could be hit.
 */
@Injectable()
export class TempSweeper implements OnApplicationBootstrap {
  private readonly logger = new Logger(TempSweeper.name);

  constructor(@Inject(NCPS_CONFIG) private readonly config: NcpsConfig) {}

  async onApplicationBootstrap(): Promise<void> {
    const removed = await removeStaleTempFiles(this.config.cache.tempPath, Date.now() - process.uptime() * 1000);
    if (removed > 0) this.logger.log({ removed, dir: this.config.cache.tempPath }, 'removed temp files of an earlier run');
  }
}

/** Removes `ncps-dl-*.tmp` files in `dir` last modified before `before` (ms); returns how many. */
export async function removeStaleTempFiles(dir: string, before: number): Promise<number> {
  const names = await readdir(dir).catch(() => [] as string[]);
  let removed = 0;
  for (const name of names.filter((n) => TEMP_FILE.test(n))) {
    const path = join(dir, name);
    const info = await stat(path).catch(() => null);
    if (!info?.isFile() || info.mtimeMs >= before) continue;
    await rm(path, { force: true });
    removed += 1;
  }
  return removed;
}
