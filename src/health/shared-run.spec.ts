import { sharedRun } from './shared-run';

describe('sharedRun', () => {
  let clock: number;
  const now = () => clock;

  beforeEach(() => (clock = 1_000));

  it('gives concurrent callers one run', async () => {
    let release!: (n: number) => void;
    const fn = jest.fn(() => new Promise<number>((resolve) => (release = resolve)));
    const sut = sharedRun(fn, 1000, now);
    const calls = [sut(), sut(), sut()];
    await Promise.resolve();
    release(7);
    expect(await Promise.all(calls)).toEqual([7, 7, 7]);
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it('reuses a settled result for ttl, then runs again', async () => {
    let n = 0;
    const fn = jest.fn(async () => ++n);
    const sut = sharedRun(fn, 1000, now);
    expect(await sut()).toBe(1);
    clock += 999;
    expect(await sut()).toBe(1);
    clock += 1;
    expect(await sut()).toBe(2);
    expect(fn).toHaveBeenCalledTimes(2);
  });

  it('counts the ttl from when the run settled, not from when it started', async () => {
    let release!: () => void;
    let n = 0;
    const sut = sharedRun(() => new Promise<number>((resolve) => (release = () => resolve(++n))), 1000, now);
    const first = sut();
    await Promise.resolve();
    clock += 5000; // a slow probe: still in flight, still shared
    expect(sut()).toBe(first);
    release();
    await first;
    clock += 500;
    expect(await sut()).toBe(1);
  });

  it('shares a failure with the callers of its run, and tries again after ttl', async () => {
    const fn = jest.fn().mockRejectedValueOnce(new Error('down')).mockResolvedValueOnce('up');
    const sut = sharedRun(fn as () => Promise<string>, 1000, now);
    await expect(sut()).rejects.toThrow('down');
    await expect(sut()).rejects.toThrow('down');
    clock += 1000;
    await expect(sut()).resolves.toBe('up');
  });
});
