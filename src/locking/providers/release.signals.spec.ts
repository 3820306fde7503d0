import { ReleaseSignals, ReleaseWatch } from './release.signals';

describe('ReleaseSignals and ReleaseWatch', () => {
  let signals: ReleaseSignals;

  beforeEach(() => {
    signals = new ReleaseSignals();
  });

  it('wakes a sleeping waiter when its key is released', async () => {
    const sut = new ReleaseWatch((listener) => signals.listen('k', listener));
    sut.arm();
    const sleeping = sut.sleep(10_000);
    signals.notify('other');
    signals.notify('k');
    await expect(sleeping).resolves.toBe(true);
    sut.close();
  });

  it('does not miss a release that happens between the attempt and the sleep', async () => {
    const sut = new ReleaseWatch((listener) => signals.listen('k', listener));
    sut.arm();
    signals.notify('k'); // while the attempt was on its way back
    await expect(sut.sleep(10_000)).resolves.toBe(true);
    sut.arm();
    await expect(sut.sleep(10)).resolves.toBe(false);
    sut.close();
  });

  it('keeps no listener once every watch is closed', () => {
    const watches = [1, 2].map(() => new ReleaseWatch((listener) => signals.listen('k', listener)));
    for (const watch of watches) watch.close();
    expect((signals as unknown as { listeners: Map<string, unknown> }).listeners.size).toBe(0);
  });
});
