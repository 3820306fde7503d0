import { Logger } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { NcpsConfig } from 'src/config/config';
import { ConfigError } from 'src/config/option';
import { LruScheduler } from './lru.scheduler';
import { LruService } from './lru.service';

const config = (lru?: { schedule: string; timezone: string }) => ({ cache: { lru } }) as unknown as NcpsConfig;

describe('LruScheduler', () => {
  let registry: SchedulerRegistry;
  let runOnce: jest.Mock<Promise<unknown>, [AbortSignal?]>;
  const lru = () => ({ runOnce }) as unknown as LruService;

  beforeEach(() => {
    registry = new SchedulerRegistry();
    runOnce = jest.fn(async () => ({ ran: false }));
    jest.spyOn(Logger.prototype, 'log').mockImplementation();
  });

  afterEach(() => {
    for (const name of registry.getCronJobs().keys()) registry.deleteCronJob(name);
    jest.restoreAllMocks();
  });

  it('schedules nothing without --cache-lru-schedule', () => {
    const sut = new LruScheduler(config(), registry, lru());
    sut.onApplicationBootstrap();
    expect(registry.getCronJobs().size).toBe(0);
  });

  it('schedules the LRU on the cron expression, in the system time zone for Local', () => {
    const sut = new LruScheduler(config({ schedule: '0 2 * * *', timezone: 'Local' }), registry, lru());
    sut.onApplicationBootstrap();

    const job = registry.getCronJob('lru');
    expect(job.isActive).toBe(true);
    expect(job.cronTime.source).toBe('0 2 * * *');
    expect(job.cronTime.timeZone).toBe(Intl.DateTimeFormat().resolvedOptions().timeZone);
  });

  it('accepts seconds and a named time zone', () => {
    const sut = new LruScheduler(config({ schedule: '*/2 * * * * *', timezone: 'Asia/Tokyo' }), registry, lru());
    sut.onApplicationBootstrap();

    const job = registry.getCronJob('lru');
    expect(job.cronTime.timeZone).toBe('Asia/Tokyo');
    const [first, second] = job.nextDates(2).map((d) => d.toMillis());
    expect(second - first).toBe(2000);
  });

  it.each([
    ['an invalid cron expression', '61 * * * *', 'Local'],
    ['an unknown time zone', '0 2 * * *', 'Mars/Olympus'],
  ])('refuses %s, naming the option', (_what, schedule, timezone) => {
    const sut = new LruScheduler(config({ schedule, timezone }), registry, lru());
    expect(() => sut.onApplicationBootstrap()).toThrow(ConfigError);
    expect(() => sut.onApplicationBootstrap()).toThrow(/--cache-lru-schedule/);
  });

  it('runs the LRU on each tick and logs a failed run instead of throwing', async () => {
    const failed = jest.spyOn(Logger.prototype, 'error').mockImplementation();
    runOnce.mockRejectedValueOnce(new Error('database down'));
    const sut = new LruScheduler(config({ schedule: '0 2 * * *', timezone: 'Local' }), registry, lru());
    sut.onApplicationBootstrap();

    await registry.getCronJob('lru').fireOnTick();

    expect(runOnce).toHaveBeenCalledTimes(1);
    expect(failed).toHaveBeenCalledWith({ err: expect.any(Error) }, 'LRU run failed');
  });

  it('at shutdown, asks the run in progress to stop and waits for it', async () => {
    let finish!: () => void;
    runOnce.mockImplementation((signal) => new Promise((resolve) => (finish = () => resolve({ ran: true, signal }))));
    const sut = new LruScheduler(config({ schedule: '0 2 * * *', timezone: 'Local' }), registry, lru());
    sut.onApplicationBootstrap();
    void registry.getCronJob('lru').fireOnTick();

    let stopped = false;
    const shutdown = sut.beforeApplicationShutdown().then(() => (stopped = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(runOnce.mock.calls[0][0]?.aborted).toBe(true);
    expect(stopped).toBe(false);

    finish();
    await shutdown;
    expect(stopped).toBe(true);
  });
});
