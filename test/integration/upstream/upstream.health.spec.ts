import { Logger } from '@nestjs/common';
import { formatPublicKey, generateKeyPair } from 'src/nix';
import { FakeUpstream } from 'test/support/fake-upstream';
import { makeNarInfo, startUpstreams, UpstreamHarness } from './upstream.harness';

const key = generateKeyPair('127.0.0.1-1');

describe('upstream health checks', () => {
  let harness: UpstreamHarness | undefined;
  const upstreams: FakeUpstream[] = [];

  async function upstream(): Promise<FakeUpstream> {
    const started = await FakeUpstream.start();
    upstreams.push(started);
    return started;
  }

  afterEach(async () => {
    await harness?.close();
    harness = undefined;
    await Promise.all(upstreams.splice(0).map((u) => u.stop()));
    jest.restoreAllMocks();
  });

  it('marks a dead upstream unhealthy, skips it, and takes it back when it recovers', async () => {
    const flaky = await upstream();
    const steady = await upstream();
    const made = makeNarInfo({ key: key.secretKey });
    flaky.serve(`/${made.hash}.narinfo`, made.text);
    const path = `/${made.hash}.narinfo`;
    harness = await startUpstreams({ urls: [flaky.url, steady.url], publicKeys: [formatPublicKey(key.publicKey)] });
    const { service, health } = harness;
    await expect(service.findNarInfo(made.hash)).resolves.toMatchObject({ upstream: { url: flaky.url } });

    await flaky.stop();
    await service.checkUpstreams();
    expect(service.list()[0]).toMatchObject({ healthy: false, reason: expect.stringContaining('ECONNREFUSED') });
    await expect(health.check()).resolves.toMatchObject({
      upstreams: { status: 'up', healthy: 1, total: 2, upstreams: [{ url: flaky.url, healthy: false }, { healthy: true }] },
    });

    await flaky.restart();
    flaky.resetCounts();
    await expect(service.findNarInfo(made.hash)).resolves.toBeNull();
    expect(flaky.count(path)).toBe(0); // skipped, not asked
    expect(steady.count(path)).toBe(2);

    await service.checkUpstreams();
    expect(service.list()[0]).toEqual(expect.objectContaining({ healthy: true }));
    expect(service.list()[0].reason).toBeUndefined();
    await expect(service.findNarInfo(made.hash)).resolves.toMatchObject({ upstream: { url: flaky.url } });
    expect(flaky.count(path)).toBe(1);
  });

  it('marks unhealthy an upstream whose nix-cache-info fails or names another store', async () => {
    const failing = await upstream();
    failing.route('/nix-cache-info', { status: 503 });
    const foreign = await upstream();
    foreign.serve('/nix-cache-info', 'StoreDir: /gnu/store\nPriority: 10\n');
    harness = await startUpstreams({ urls: [failing.url, foreign.url] });
    await harness.service.checkUpstreams();

    expect(harness.service.list()).toEqual([
      expect.objectContaining({ healthy: false, reason: 'nix-cache-info answered HTTP 503' }),
      expect.objectContaining({ healthy: false, reason: 'StoreDir is /gnu/store, not /nix/store' }),
    ]);
    await expect(harness.service.findNarInfo(makeNarInfo().hash)).resolves.toBeNull();
    expect(failing.count(`/nix-cache-info`)).toBe(1);
  });

  it('picks up a priority change at the next check', async () => {
    const changing = await upstream();
    harness = await startUpstreams({ urls: [changing.url] });
    await harness.service.checkUpstreams();
    expect(harness.service.list()[0].priority).toBe(40);
    changing.serve('/nix-cache-info', 'StoreDir: /nix/store\nPriority: 41\n');
    await harness.service.checkUpstreams();
    expect(harness.service.list()[0].priority).toBe(41);
  });

  it('runs one check at a time', async () => {
    const slow = await upstream();
    slow.route('/nix-cache-info', { body: 'StoreDir: /nix/store\n', delayMs: 100 });
    harness = await startUpstreams({ urls: [slow.url] });
    await Promise.all([harness.service.checkUpstreams(), harness.service.checkUpstreams()]);
    expect(slow.count('/nix-cache-info')).toBe(1);
  });

  it('names each upstream without a key in a startup warning and in /health as unverified', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn');
    const verified = await upstream();
    const unverified = await upstream();
    harness = await startUpstreams({
      urls: [verified.url, `http://localhost:${unverified.port}`],
      publicKeys: [formatPublicKey(key.publicKey)],
      allowUnsigned: [`http://localhost:${unverified.port}`],
    });
    expect(warn).toHaveBeenCalledWith(
      `upstream http://localhost:${unverified.port} has no public key: its narinfos are not verified, and served without our signature`,
    );
    await expect(harness.health.check()).resolves.toMatchObject({
      upstreams: { status: 'up', unverified: [`http://localhost:${unverified.port}`] },
    });
  });
});
