import { Test } from '@nestjs/testing';
import { Logger } from '@nestjs/common';
import { Clock } from 'src/common/clock';
import { ArtifactRepository, NarFileRepository, NarInfoRepository } from 'src/database';
import { FakeClock } from 'test/support/fake-clock';
import { AccessTracker } from './access-tracker';

type Touch = jest.Mock<Promise<void>, [Map<string, number>]>;

describe('AccessTracker', () => {
  let touched: { narInfos: Touch; narFiles: Touch; artifacts: Touch };
  let clock: FakeClock;
  let sut: AccessTracker;

  beforeEach(async () => {
    touched = { narInfos: jest.fn(), narFiles: jest.fn(), artifacts: jest.fn() };
    for (const touch of Object.values(touched)) touch.mockResolvedValue(undefined);
    clock = new FakeClock(1_000_000);
    const moduleRef = await Test.createTestingModule({
      providers: [
        AccessTracker,
        { provide: NarInfoRepository, useValue: { touch: touched.narInfos } satisfies Pick<NarInfoRepository, 'touch'> },
        { provide: NarFileRepository, useValue: { touch: touched.narFiles } satisfies Pick<NarFileRepository, 'touch'> },
        { provide: ArtifactRepository, useValue: { touch: touched.artifacts } satisfies Pick<ArtifactRepository, 'touch'> },
        { provide: Clock, useValue: clock },
      ],
    }).compile();
    sut = moduleRef.get(AccessTracker);
    jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
  });
  afterEach(() => jest.restoreAllMocks());

  it('writes each table its own batch, the last time per key rounded down to the second, and nothing when idle', async () => {
    sut.narInfoServed('a', 10_400);
    sut.narInfoServed('a', 12_900);
    sut.narFileServed('nar/x.nar', 7_001);
    sut.artifactServed('log/y.drv', 3_999);

    await sut.flush();
    await sut.flush();

    expect(touched.narInfos.mock.calls).toEqual([[new Map([['a', 12_000]])]]);
    expect(touched.narFiles.mock.calls).toEqual([[new Map([['nar/x.nar', 7_000]])]]);
    expect(touched.artifacts.mock.calls).toEqual([[new Map([['log/y.drv', 3_000]])]]);
  });

  it('takes the time of a serving from its clock', async () => {
    sut.narInfoServed('a');
    clock.set(2_500_000);
    sut.narFileServed('nar/x.nar');

    await sut.flush();

    expect(touched.narInfos).toHaveBeenCalledWith(new Map([['a', 1_000_000]]));
    expect(touched.narFiles).toHaveBeenCalledWith(new Map([['nar/x.nar', 2_500_000]]));
  });

  it('writes what gathered every 5 seconds once started, and stops at shutdown after a last write', async () => {
    sut.onModuleInit();
    sut.narInfoServed('a');
    await clock.advance(4_999);
    expect(touched.narInfos).not.toHaveBeenCalled();
    await clock.advance(1);
    expect(touched.narInfos).toHaveBeenCalledWith(new Map([['a', 1_000_000]]));

    sut.narInfoServed('b');
    await clock.advance(5_000);
    expect(touched.narInfos).toHaveBeenLastCalledWith(new Map([['b', 1_005_000]]));

    sut.narInfoServed('c');
    await sut.beforeApplicationShutdown();
    expect(touched.narInfos).toHaveBeenLastCalledWith(new Map([['c', 1_010_000]]));
    expect(clock.timers).toBe(0);
  });

  it('keeps the times a failed write could not record, merged with those served meanwhile, and still writes the other tables', async () => {
    let fail!: (e: Error) => void;
    touched.narInfos.mockImplementationOnce(() => new Promise((_resolve, reject) => (fail = reject)));
    sut.narInfoServed('a', 5_000);
    sut.narInfoServed('c', 5_000);
    sut.narFileServed('nar/x.nar', 5_000);
    const first = sut.flush();
    // Served while the write is under way: `a` again (its later time wins), and `b`.
    sut.narInfoServed('a', 7_000);
    sut.narInfoServed('b', 6_000);
    fail(new Error('database is locked'));
    await first;
    expect(touched.narFiles).toHaveBeenCalledTimes(1);

    await sut.flush();

    expect(touched.narInfos).toHaveBeenLastCalledWith(
      new Map([
        ['a', 7_000],
        ['b', 6_000],
        ['c', 5_000],
      ]),
    );
  });
});
