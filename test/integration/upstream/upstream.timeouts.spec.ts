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
    const { ms } = await elapsed(async () => {
      harness = await startUpstreams({ urls: [blackhole.url, 'http://127.0.0.1:1'], publicKeys, dialerTimeout: '1s' });
    });
    expect(ms).toBeLessThan(700); // the first check runs in the background, and takes the 1 s dial timeout
    expect(harness!.service.list().every((upstream) => upstream.healthy)).toBe(true);

    await harness!.service.checkUpstreams();
    expect(harness!.service.list()).toEqual([
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
    expect(ms).toBeLessThan(900);
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
    expect(ms).toBeLessThan(900);
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
    const first = await elapsed(() => harness!.service.findNarInfo(made.hash));
    expect(first.result?.upstream.url).toBe(good.url);
    expect(first.ms).toBeLessThan(900);
    const second = await elapsed(() => harness!.service.findNarInfo(made.hash));
    expect(second.result?.upstream.url).toBe(good.url);
    expect(second.ms).toBeLessThan(100);
  });

  it('bounds the narinfo body too: headers followed by silence answer null', async () => {
    const fake = await FakeUpstream.start();
    cleanups.push(() => fake.stop());
    const made = makeNarInfo({ key: key.secretKey });
    fake.route(`/${made.hash}.narinfo`, { body: made.text, stallAfterBytes: 10 });
    harness = await startUpstreams({ urls: [fake.url], publicKeys });

    const { ms, result } = await elapsed(() => harness!.service.findNarInfo(made.hash));
    expect(result).toBeNull();
    expect(ms).toBeLessThan(900);
  });
});
