import { BeforeApplicationShutdown, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { Clock, Timer } from 'src/common/clock';
import { ArtifactRepository, NarFileRepository, NarInfoRepository } from 'src/database';

const FLUSH_INTERVAL_MS = 5_000;

/**
 * Remembers when narinfos, NARs and artifacts were last served and writes those times in batches, so a cache
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
  private readonly narInfos: Batch;
  private readonly narFiles: Batch;
  private readonly artifacts: Batch;
  private timer?: Timer;

  constructor(
    narInfoRepository: NarInfoRepository,
    narFileRepository: NarFileRepository,
    artifactRepository: ArtifactRepository,
    private readonly clock: Clock,
  ) {
    this.narInfos = new Batch((times) => narInfoRepository.touch(times));
    this.narFiles = new Batch((times) => narFileRepository.touch(times));
    this.artifacts = new Batch((times) => artifactRepository.touch(times));
  }

  onModuleInit(): void {
    this.timer = this.clock.setInterval(() => void this.flush(), FLUSH_INTERVAL_MS);
    this.timer.unref();
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.timer?.cancel();
    await this.flush();
  }

  narInfoServed(hash: string, now = this.clock.now()): void {
    this.narInfos.served(hash, now);
  }

  narFileServed(key: string, now = this.clock.now()): void {
    this.narFiles.served(key, now);
  }

  /** An artifact (listing, log, ...) served, by its path. */
  artifactServed(path: string, now = this.clock.now()): void {
    this.artifacts.served(path, now);
  }

  async flush(): Promise<void> {
    for (const batch of [this.narInfos, this.narFiles, this.artifacts]) {
      try {
        await batch.write();
      } catch (e) {
        this.logger.warn({ err: e }, 'could not record access times; will retry');
      }
    }
  }
}

/** The access times of one table gathered since its last write, by key. */
class Batch {
  private pending = new Map<string, number>();

  constructor(private readonly touch: (times: Map<string, number>) => Promise<unknown>) {}

  served(key: string, now: number): void {
    this.pending.set(key, now);
  }

  /** Writes what gathered; on a failure keeps it for the next write (the later time of a key wins), and throws. */
  async write(): Promise<void> {
    const times = this.pending;
    if (times.size === 0) return;
    this.pending = new Map();
    try {
      // Times are rounded to the second so rows served in the same second share one UPDATE.
      await this.touch(new Map([...times].map(([k, t]) => [k, Math.floor(t / 1000) * 1000])));
    } catch (e) {
      times.forEach((t, k) => this.pending.set(k, Math.max(t, this.pending.get(k) ?? 0)));
      throw e;
    }
  }
}
