import { BeforeApplicationShutdown, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { NarFileRepository, NarInfoRepository } from 'src/database';

const FLUSH_INTERVAL_MS = 5_000;

/**
 * Remembers when narinfos and NARs were last served and writes those times in batches, so a cache
 * hit costs no database write. A crash loses at most one interval of access times, which only
 * makes the LRU slightly less precise.
 *
 * The last flush runs before the application's shutdown hooks: Nest closes the database (a module
 * deeper in the graph) before the cache's own onApplicationShutdown would run. Reads served while
 * the server drains after that are not recorded, as after a crash.
 */
@Injectable()
export class AccessTracker implements OnModuleInit, BeforeApplicationShutdown {
  private readonly logger = new Logger(AccessTracker.name);
  private narInfos = new Map<string, number>();
  private narFiles = new Map<string, number>();
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly narInfoRepository: NarInfoRepository,
    private readonly narFileRepository: NarFileRepository,
  ) {}

  onModuleInit(): void {
    this.timer = setInterval(() => void this.flush(), FLUSH_INTERVAL_MS);
    this.timer.unref();
  }

  async beforeApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }

  narInfoServed(hash: string, now = Date.now()): void {
    this.narInfos.set(hash, now);
  }

  narFileServed(key: string, now = Date.now()): void {
    this.narFiles.set(key, now);
  }

  async flush(): Promise<void> {
    const narInfos = this.narInfos;
    const narFiles = this.narFiles;
    this.narInfos = new Map();
    this.narFiles = new Map();
    try {
      // Times are rounded to the second so rows served in the same second share one UPDATE.
      if (narInfos.size > 0) await this.narInfoRepository.touch(roundToSeconds(narInfos));
      if (narFiles.size > 0) await this.narFileRepository.touch(roundToSeconds(narFiles));
    } catch (e) {
      this.logger.warn({ err: e }, 'could not record access times; will retry');
      narInfos.forEach((t, k) => this.narInfos.set(k, Math.max(t, this.narInfos.get(k) ?? 0)));
      narFiles.forEach((t, k) => this.narFiles.set(k, Math.max(t, this.narFiles.get(k) ?? 0)));
    }
  }
}

function roundToSeconds(map: Map<string, number>): Map<string, number> {
  return new Map([...map].map(([k, t]) => [k, Math.floor(t / 1000) * 1000]));
}
