import { Logger } from '@nestjs/common';
import { formatPublicKey, generateKeyPair } from 'src/nix';
import { FakeUpstream, RouteBehaviour } from 'test/support/fake-upstream';
import { makeNarInfo, startUpstreams, UpstreamHarness } from './upstream.harness';

const key = generateKeyPair('upstream-key-1');
const publicKeys = [formatPublicKey(key.publicKey)];

/**
 * UpstreamService.lookupNarInfo tells a certain "not found" (every upstream asked answered 403, 404
 * or 410) from a miss that is not certain: only the former may be remembered as absent.
 */
describe('UpstreamService.lookupNarInfo: absent or unavailable', () => {
  const upstreams: FakeUpstream[] = [];
  let harness: UpstreamHarness | undefined;

  async function upstreamAnswering(behaviour: RouteBehaviour, hash: string): Promise<FakeUpstream> {
    const started = await FakeUpstream.start();
    started.route(`/${hash}.narinfo`, behaviour);
    upstreams.push(started);
    return started;
  }

  beforeEach(() => {
    jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
  });

  afterEach(async () => {
    await harness?.close();
    harness = undefined;
    await Promise.all(upstreams.splice(0).map((u) => u.stop()));
    jest.restoreAllMocks();
  });

  it('is absent when every upstream answers 404, 410 or 403', async () => {
    const { hash } = makeNarInfo();
    const all = await Promise.all([404, 410, 403].map((status) => upstreamAnswering({ status }, hash)));
    harness = await startUpstreams({ urls: all.map((u) => u.url), publicKeys });

    await expect(harness.service.lookupNarInfo(hash)).resolves.toEqual({ outcome: 'absent' });
    expect(all.map((u) => u.count(`/${hash}.narinfo`))).toEqual([1, 1, 1]);
  });

  it.each([
    ['a 500', { status: 500 }],
    ['a 503', { status: 503 }],
    ['a 429', { status: 429, headers: { 'retry-after': '1' } }],
    ['no answer within the header timeout', { delayMs: Infinity }],
    ['a narinfo that does not parse', { body: 'not a narinfo' }],
  ] as [string, RouteBehaviour][])('is unavailable, not absent, when one upstream answers 404 and another %s', async (_, behaviour) => {
    const { hash } = makeNarInfo();
    const absent = await upstreamAnswering({ status: 404 }, hash);
    const failing = await upstreamAnswering(behaviour, hash);
    harness = await startUpstreams({ urls: [absent.url, failing.url], publicKeys });

    await expect(harness.service.lookupNarInfo(hash)).resolves.toEqual({ outcome: 'unavailable' });
    expect(failing.count(`/${hash}.narinfo`)).toBe(1);
    await expect(harness.service.findNarInfo(hash)).resolves.toBeNull();
  });

  it('is unavailable when an upstream that might have it was skipped as unhealthy', async () => {
    const { hash } = makeNarInfo();
    const absent = await upstreamAnswering({ status: 404 }, hash);
    const down = await upstreamAnswering({ status: 404 }, hash);
    down.route('/nix-cache-info', { status: 503 });
    harness = await startUpstreams({ urls: [absent.url, down.url], publicKeys });
    await harness.service.checkUpstreams();

    await expect(harness.service.lookupNarInfo(hash)).resolves.toEqual({ outcome: 'unavailable' });
    expect(down.count(`/${hash}.narinfo`)).toBe(0);
  });

  it('is found when one upstream has it, whatever the others answer', async () => {
    const made = makeNarInfo({ key: key.secretKey });
    const failing = await upstreamAnswering({ status: 500 }, made.hash);
    const having = await upstreamAnswering({ body: made.text }, made.hash);
    harness = await startUpstreams({ urls: [failing.url, having.url], publicKeys });

    await expect(harness.service.lookupNarInfo(made.hash)).resolves.toMatchObject({
      outcome: 'found',
      found: { upstream: { url: having.url }, info: made.info },
    });
  });
});
