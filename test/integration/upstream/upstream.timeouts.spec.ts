import { formatPublicKey, generateKeyPair } from 'src/nix';
import { FakeUpstream, startBlackhole } from 'test/support/fake-upstream';
import { makeNarInfo, startUpstreams, UpstreamHarness } from './upstream.harness';

const key = generateKeyPair('test-1');
const publicKeys = [formatPublicKey(key.publicKey)];

describe('upstream timeouts (dial and response-header timeouts of 300 ms)', () => {
  let harness: UpstreamHarness | undefined;
  const cleanups: (() => Promise<void>)[] = [];

  afterEach(async () => {
    await harness?.close();
    harness = undefined;
    await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
  });

  async function elapsed<T>(run: () => Promise<T>): Promise<{ ms: number; result: T }> {
    const started = Date.now();
    const result = await run();
    return { ms: Date.now() - started, result };
  }

  it('starts even when every upstream is unreachable, and marks them unhealthy after the first check', async () => {
    const blackhole = await startBlackhole();
    cleanups.push(() => blackhole.stop());
    harness = await startUpstreams({ urls: [blackhole.url, 'http://127.0.0.1:1'], publicKeys, dialerTimeout: '1s' });
    // The first check runs in the background and takes the 1 s dial timeout: had the start waited for
    // it, the upstreams would already be marked unhealthy (no timing bound needed to tell).
    expect(harness.service.list().every((upstream) => upstream.healthy)).toBe(true);

    await harness.service.checkUpstreams();
    expect(harness.service.list()).toEqual([
      expect.objectContaining({ healthy: false, reason: expect.stringContaining('no connection within 1000 ms') }),
      expect.objectContaining({ healthy: false, reason: expect.stringContaining('ECONNREFUSED') }),
    ]);
  });

  it('answers null within about the header timeout when an upstream accepts but never answers', async () => {
    // Healthy at start (nix-cache-info answered), silent afterwards: the case the health check cannot catch.
    const fake = await FakeUpstream.start();
    cleanups.push(() => fake.stop());
    harness = await startUpstreams({ urls: [fake.url], publicKeys });
    await harness.service.checkUpstreams();
    fake.route(`/${'0'.repeat(32)}.narinfo`, { delayMs: Infinity });

    const { ms, result } = await elapsed(() => harness!.service.findNarInfo('0'.repeat(32)));
    expect(result).toBeNull();
    expect(ms).toBeGreaterThanOrEqual(280);
    // The upstream never answers: only the timeout ends the lookup (the metric below says which one).
    // The upper bound is ten times it, a margin for a loaded machine.
    expect(ms).toBeLessThan(3000);
    const metrics = await harness.registry.metrics();
    expect(metrics).toContain(`ncps_upstream_requests_total{upstream="127.0.0.1:${fake.port}",kind="narinfo",status="timeout"} 1`);
  });

  it('answers null within about the dial timeout when connections to an upstream hang', async () => {
    // Healthy at the check, then its host goes dark: connections to the same port hang.
    const fake = await FakeUpstream.start();
    harness = await startUpstreams({ urls: [fake.url], publicKeys });
    await harness.service.checkUpstreams();
    await fake.stop();
    const blackhole = await startBlackhole(fake.port);
    cleanups.push(() => blackhole.stop());

    const { ms, result } = await elapsed(() => harness!.service.findNarInfo(makeNarInfo().hash));
    expect(result).toBeNull();
    expect(ms).toBeGreaterThanOrEqual(280);
    // Connections hang: only the dial timeout ends the lookup. The upper bound is ten times it, a margin for a loaded machine.
    expect(ms).toBeLessThan(3000);
    const metrics = await harness.registry.metrics();
    expect(metrics).toContain(`ncps_upstream_requests_total{upstream="127.0.0.1:${fake.port}",kind="narinfo",status="timeout"} 1`);
  });

  it('does not let a hanging better-priority upstream delay the answer beyond the timeout', async () => {
    const blackhole = await startBlackhole();
    cleanups.push(() => blackhole.stop());
    const good = await FakeUpstream.start();
    cleanups.push(() => good.stop());
    const made = makeNarInfo({ key: key.secretKey });
    good.serve(`/${made.hash}.narinfo`, made.text);
    harness = await startUpstreams({ urls: [`${blackhole.url}?priority=1`, good.url], publicKeys });

    // The first lookup waits for the first check, which finds the blackhole dead: then it is skipped.
    await expect(harness.service.findNarInfo(made.hash)).resolves.toMatchObject({ upstream: { url: good.url } });
    await expect(harness.service.findNarInfo(made.hash)).resolves.toMatchObject({ upstream: { url: good.url } });
    // Neither lookup waited on the blackhole: it was never asked for a narinfo, only checked once.
    const metrics = await harness.registry.metrics();
    const dark = `upstream="${new URL(blackhole.url).host}"`;
    expect(metrics).toContain(`ncps_upstream_requests_total{${dark},kind="cache_info",status="timeout"} 1`);
    expect(metrics).not.toContain(`{${dark},kind="narinfo"`);
  });

  it('bounds the narinfo body too: headers followed by silence answer null', async () => {
    const fake = await FakeUpstream.start();
    cleanups.push(() => fake.stop());
    const made = makeNarInfo({ key: key.secretKey });
    fake.route(`/${made.hash}.narinfo`, { body: made.text, stallAfterBytes: 10 });
    harness = await startUpstreams({ urls: [fake.url], publicKeys });

    const { ms, result } = await elapsed(() => harness!.service.findNarInfo(made.hash));
    expect(result).toBeNull();
    // The upstream stays silent: only a timeout ends the lookup. Ten times the 300 ms, a margin for a loaded machine.
    expect(ms).toBeLessThan(3000);
  });
});
