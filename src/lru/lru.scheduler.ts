import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { CronJob } from 'cron';
import { NcpsConfig } from 'src/config/config';
import { NCPS_CONFIG } from 'src/config/config.module';
import { ConfigError } from 'src/config/option';
import { LruService } from './lru.service';

const JOB_NAME = 'lru';

/** Runs LruService on `--cache-lru-schedule`, in `--cache-lru-schedule-timezone` (Local: the system's). */
@Injectable()
export class LruScheduler implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('LRU');
  private readonly shutdown = new AbortController();
  private job?: CronJob;
  private running: Promise<void> = Promise.resolve();

  constructor(
    @Inject(NCPS_CONFIG) private readonly config: NcpsConfig,
    private readonly registry: SchedulerRegistry,
    private readonly lru: LruService,
  ) {}

  onApplicationBootstrap(): void {
    const schedule = this.config.cache.lru;
    if (!schedule) return;
    const job = this.createJob(schedule.schedule, schedule.timezone);
    this.registry.addCronJob(JOB_NAME, job);
    job.start();
    this.job = job;
    this.logger.log({ schedule: schedule.schedule, timezone: schedule.timezone, next_run: job.nextDate().toISO() }, 'LRU scheduled');
  }

  /** Lets a run in progress stop between two evictions before the database and storage close. */
  async beforeApplicationShutdown(): Promise<void> {
    // Not awaited: cron's stop() waits for the tick in progress, which ends only once aborted below.
    void this.job?.stop();
    this.shutdown.abort();
    await this.running;
  }

  private createJob(cronTime: string, timezone: string): CronJob {
    try {
      return CronJob.from({
        cronTime,
        onTick: () => this.tick(),
        timeZone: timezone === 'Local' ? null : timezone,
        // A run longer than the period is not overlapped by the next tick of this instance.
        waitForCompletion: true,
      });
    } catch (e) {
      throw new ConfigError(`--cache-lru-schedule "${cronTime}" in time zone "${timezone}": ${(e as Error).message}`);
    }
  }

  private tick(): Promise<void> {
    this.running = this.lru.runOnce(this.shutdown.signal).then(
      () => undefined,
      (e: unknown) => this.logger.error({ err: e }, 'LRU run failed'),
    );
    return this.running;
  }
}
