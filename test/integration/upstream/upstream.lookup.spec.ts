import { Logger } from '@nestjs/common';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatPublicKey, generateKeyPair, serializeNarInfo, signedOnlyBy } from 'src/nix';
import { narInfoFixture, readNixFixture } from 'test/fixtures/nix/fixtures';
import { FakeUpstream } from 'test/support/fake-upstream';
import { makeNarInfo, startUpstreams, UpstreamHarness, withNarHashEncoding } from './upstream.harness';

const trusted = generateKeyPair('upstream-key-1');
const untrusted = generateKeyPair('upstream-key-1'); // same name, other key: a forged signature
const cacheInfo = (priority: number) => `StoreDir: /nix/store\nWantMassQuery: 1\nPriority: ${priority}\n`;

describe('UpstreamService.findNarInfo', () => {
  const upstreams: FakeUpstream[] = [];
  let harness: UpstreamHarness | undefined;

  async function upstream(priority: number): Promise<FakeUpstream> {
    const started = await FakeUpstream.start({ cacheInfo: cacheInfo(priority) });
    upstreams.push(started);
    return started;
  }

  async function start(urls: string[], publicKeys = [formatPublicKey(trusted.publicKey)]): Promise<UpstreamHarness> {
    harness = await startUpstreams({ urls, publicKeys });
    return harness;
  }

  afterEach(async () => {
    await harness?.close();
    harness = undefined;
    await Promise.all(upstreams.splice(0).map((u) => u.stop()));
    jest.restoreAllMocks();
  });

  it('prefers the best priority that has the narinfo, waiting for it when it is slower', async () => {
    const best = await upstream(10);
    const other = await upstream(40);
    const made = makeNarInfo({ key: trusted.secretKey });
    best.route(`/${made.hash}.narinfo`, { body: made.text, delayMs: 200 }); // within the 300 ms header timeout
    other.serve(`/${made.hash}.narinfo`, made.text);
    const { service } = await start([other.url, best.url]);

    const started = Date.now();
    const found = await service.findNarInfo(made.hash);
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    expect(found?.upstream).toMatchObject({ url: best.url, priority: 10 });
    expect(found?.info).toEqual(made.info);
    expect(found?.narUrl).toBe(`${best.url}/${made.info.url}`);
  });

  it('answers from a worse priority once the better ones answered 404, without waiting for slower worse ones', async () => {
    const best = await upstream(10);
    const middle = await upstream(30);
    const worst = await upstream(60);
    const made = makeNarInfo({ key: trusted.secretKey });
    middle.serve(`/${made.hash}.narinfo`, made.text);
    // The worst upstream answers only once the test lets it (or after 10 s), and the header timeout is
    // long: an answer that arrives while it is still held proves that the lookup did not wait for it.
    let release!: () => void;
    let released = false;
    const held = new Promise<void>((resolve) => (release = resolve)).then(() => void (released = true));
    const fallback = setTimeout(release, 10_000);
    worst.route(`/${made.hash}.narinfo`, { body: made.text, waitFor: held });
    harness = await startUpstreams({
      urls: [worst.url, middle.url, best.url],
      publicKeys: [formatPublicKey(trusted.publicKey)],
      responseHeaderTimeout: '30s',
    });

    try {
      const found = await harness.service.findNarInfo(made.hash);
      expect(released).toBe(false);
      expect(found?.upstream.url).toBe(middle.url);
      expect(best.count(`/${made.hash}.narinfo`)).toBe(1);
      expect(worst.count(`/${made.hash}.narinfo`)).toBe(1); // asked in parallel
    } finally {
      clearTimeout(fallback);
      release();
    }
  });

  it('lets ?priority= override the priority of nix-cache-info', async () => {
    const demoted = await upstream(10);
    const other = await upstream(40);
    const made = makeNarInfo({ key: trusted.secretKey });
    demoted.serve(`/${made.hash}.narinfo`, made.text);
    other.serve(`/${made.hash}.narinfo`, made.text);
    const { service } = await start([`${demoted.url}/?priority=90`, other.url]);

    await service.checkUpstreams(); // joins the first check, started in the background
    expect(service.list().map((u) => u.priority)).toEqual([90, 40]);
    await expect(service.findNarInfo(made.hash)).resolves.toMatchObject({ upstream: { url: other.url } });
  });

  it('uses priority 50 when nix-cache-info names none', async () => {
    const silent = await FakeUpstream.start({ cacheInfo: 'StoreDir: /nix/store\n' });
    upstreams.push(silent);
    const { service } = await start([silent.url]);
    await service.checkUpstreams();
    expect(service.list()[0].priority).toBe(50);
  });

  it('answers null quickly when no upstream has it, and for statuses that mean absent or broken', async () => {
    const a = await upstream(10);
    const b = await upstream(40);
    const gone = makeNarInfo();
    a.route(`/${gone.hash}.narinfo`, { status: 410 });
    b.route(`/${gone.hash}.narinfo`, { status: 403 });
    const broken = makeNarInfo();
    a.route(`/${broken.hash}.narinfo`, { status: 500 });
    // Timeouts far beyond the test's patience: an answer means that no timeout was waited for.
    harness = await startUpstreams({
      urls: [a.url, b.url],
      publicKeys: [formatPublicKey(trusted.publicKey)],
      responseHeaderTimeout: '60s',
    });
    const { service } = harness;

    for (const hash of [makeNarInfo().hash, gone.hash, broken.hash]) {
      await expect(service.findNarInfo(hash)).resolves.toBeNull();
      // Each upstream asked once: nothing was retried or waited for.
      expect(a.count(`/${hash}.narinfo`)).toBe(1);
      expect(b.count(`/${hash}.narinfo`)).toBe(1);
    }
  });

  it('refuses a narinfo whose signature does not verify, with a warning', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn');
    const a = await upstream(40);
    const forged = makeNarInfo({ key: untrusted.secretKey });
    const unsigned = makeNarInfo();
    a.serve(`/${forged.hash}.narinfo`, forged.text).serve(`/${unsigned.hash}.narinfo`, unsigned.text);
    const { service } = await start([a.url]);

    await expect(service.findNarInfo(forged.hash)).resolves.toBeNull();
    await expect(service.findNarInfo(unsigned.hash)).resolves.toBeNull();
    expect(warn).toHaveBeenCalledWith(expect.objectContaining({ hash: forged.hash }), 'narinfo signature invalid');
    expect(warn).toHaveBeenCalledWith(expect.objectContaining({ hash: unsigned.hash }), 'narinfo signature invalid');
  });

  it('falls back to an upstream whose copy verifies when the better one is forged', async () => {
    const forger = await upstream(10);
    const honest = await upstream(40);
    const made = makeNarInfo({ key: trusted.secretKey });
    // Same store path and fields, signed by the impostor key that bears the trusted key's name.
    const forged = serializeNarInfo(signedOnlyBy(made.info, untrusted.secretKey));
    forger.serve(`/${made.hash}.narinfo`, forged);
    honest.serve(`/${made.hash}.narinfo`, made.text);
    const { service } = await start([forger.url, honest.url]);
    await expect(service.findNarInfo(made.hash)).resolves.toMatchObject({ upstream: { url: honest.url } });
  });

  it('applies a key named after a host to that host only', async () => {
    // Two upstreams told apart by host name: 127.0.0.1 and localhost.
    const numeric = await upstream(40);
    const named = await upstream(40);
    const numericKey = generateKeyPair('127.0.0.1-1');
    const namedKey = generateKeyPair('localhost-1');
    const signedByNamed = makeNarInfo({ key: namedKey.secretKey });
    numeric.serve(`/${signedByNamed.hash}.narinfo`, signedByNamed.text);
    const signedByNumeric = makeNarInfo({ key: numericKey.secretKey });
    numeric.serve(`/${signedByNumeric.hash}.narinfo`, signedByNumeric.text);
    const { service } = await start(
      [numeric.url, `http://localhost:${named.port}`],
      [formatPublicKey(numericKey.publicKey), formatPublicKey(namedKey.publicKey)],
    );

    await expect(service.findNarInfo(signedByNamed.hash)).resolves.toBeNull();
    await expect(service.findNarInfo(signedByNumeric.hash)).resolves.toMatchObject({ upstream: { url: numeric.url } });
  });

  it('takes unsigned narinfos from an upstream left without keys, which is reported as unverified', async () => {
    const a = await upstream(40);
    const unsigned = makeNarInfo();
    a.serve(`/${unsigned.hash}.narinfo`, unsigned.text);
    const { service, health } = await start([a.url], []);

    await expect(service.findNarInfo(unsigned.hash)).resolves.toMatchObject({ info: unsigned.info });
    await expect(health.check()).resolves.toMatchObject({ upstreams: { status: 'up', unverified: [a.url] } });
  });

  it.each(['base16', 'sri'] as const)('accepts a NarHash written in %s, verifies it and normalises it to nix32', async (encoding) => {
    const a = await upstream(40);
    const made = makeNarInfo({ key: trusted.secretKey });
    const text = withNarHashEncoding(made, encoding);
    expect(text).not.toContain(made.info.narHash);
    a.serve(`/${made.hash}.narinfo`, text);
    const { service } = await start([a.url]);

    const found = await service.findNarInfo(made.hash);
    expect(found?.info.narHash).toBe(made.info.narHash);
  });

  it.each([
    ['nar/0b1c2d3e-1f2a-4b5c-8d9e-0f1a2b3c4d5e.nar.zst', 'nar/0b1c2d3e-1f2a-4b5c-8d9e-0f1a2b3c4d5e.nar.zst'],
    ['nar/x.nar?hash=abc', 'nar/x.nar?hash=abc'],
  ])('resolves the opaque URL %p against the base, under a path prefix, query kept', async (url, expected) => {
    const a = await upstream(40);
    const made = makeNarInfo({ key: trusted.secretKey, url });
    a.serve(`/cache/${made.hash}.narinfo`, made.text).serve('/cache/nix-cache-info', cacheInfo(40));
    const { service } = await start([`${a.url}/cache/`]);

    const found = await service.findNarInfo(made.hash);
    expect(found?.narUrl).toBe(`${a.url}/cache/${expected}`);
    expect(found?.info.url).toBe(url);
    expect(found?.upstream.url).toBe(`${a.url}/cache`);
  });

  it('ignores a better upstream whose absolute NAR URL leaves its origin, and answers from the next one', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn');
    const best = await upstream(10);
    const next = await upstream(40);
    const stranger = await upstream(40); // another port: another origin, never configured
    const outside = makeNarInfo({ key: trusted.secretKey, url: `${stranger.url}/nar/x.nar.xz` });
    const inside = {
      ...outside,
      text: serializeNarInfo(signedOnlyBy({ ...outside.info, url: `${next.url}/nar/y.nar.xz`, sigs: [] }, trusted.secretKey)),
    };
    best.serve(`/${outside.hash}.narinfo`, outside.text);
    next.serve(`/${outside.hash}.narinfo`, inside.text);
    const { service } = await start([best.url, next.url]);

    const found = await service.findNarInfo(outside.hash);

    expect(found?.upstream.url).toBe(next.url);
    expect(found?.narUrl).toBe(`${next.url}/nar/y.nar.xz`);
    expect(stranger.requests).toEqual([]);
    expect(warn).toHaveBeenCalledWith(
      expect.objectContaining({ upstream: best.url, nar_origin: stranger.url }),
      'narinfo URL leads outside the upstream and the allowed origins: ignored',
    );
  });

  it('accepts an absolute NAR URL on an allowed origin', async () => {
    const a = await upstream(40);
    const cdn = await upstream(40);
    const made = makeNarInfo({ key: trusted.secretKey, url: `${cdn.url}/nar/x.nar.xz?sig=1` });
    a.serve(`/${made.hash}.narinfo`, made.text);
    harness = await startUpstreams({ urls: [a.url], publicKeys: [formatPublicKey(trusted.publicKey)], allowedOrigins: [cdn.url] });

    await expect(harness.service.findNarInfo(made.hash)).resolves.toMatchObject({ narUrl: `${cdn.url}/nar/x.nar.xz?sig=1` });
  });

  it('refuses a narinfo for another store path, a malformed one, and one pointing at a file: URL', async () => {
    const a = await upstream(40);
    const asked = makeNarInfo();
    const other = makeNarInfo({ key: trusted.secretKey });
    a.serve(`/${asked.hash}.narinfo`, other.text);
    const malformed = makeNarInfo();
    a.serve(`/${malformed.hash}.narinfo`, 'StorePath: nonsense\n');
    const local = makeNarInfo({ key: trusted.secretKey, url: 'file:///etc/passwd' });
    a.serve(`/${local.hash}.narinfo`, local.text);
    const { service } = await start([a.url]);

    await expect(service.findNarInfo(asked.hash)).resolves.toBeNull();
    await expect(service.findNarInfo(malformed.hash)).resolves.toBeNull();
    await expect(service.findNarInfo(local.hash)).resolves.toBeNull();
  });

  it('finds narinfos written by a real `nix copy` in a directory cache, verified with its key', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ncps-upstream-dir-'));
    try {
      const text = narInfoFixture('xz', 'hello.txt');
      const hash = /^StorePath: \/nix\/store\/([a-z0-9]{32})-/m.exec(text)![1];
      await mkdir(join(dir, 'nar'));
      await writeFile(join(dir, `${hash}.narinfo`), text);
      await writeFile(join(dir, 'nix-cache-info'), cacheInfo(30));
      const served = await FakeUpstream.start({ dir });
      upstreams.push(served);
      const { service } = await start([served.url], [readNixFixture('keys/fixture-1.pk').toString('utf8').trim()]);

      const found = await service.findNarInfo(hash);
      expect(found?.upstream.priority).toBe(30);
      expect(found?.narUrl).toBe(`${served.url}/${found?.info.url}`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('counts requests in the metrics, labelled by host', async () => {
    const a = await upstream(40);
    const made = makeNarInfo({ key: trusted.secretKey });
    a.serve(`/${made.hash}.narinfo`, made.text);
    const { service, registry } = await start([a.url]);
    await service.findNarInfo(made.hash);
    await service.findNarInfo(makeNarInfo().hash);

    const text = await registry.metrics();
    const host = `127.0.0.1:${a.port}`;
    expect(text).toContain(`ncps_upstream_requests_total{upstream="${host}",kind="narinfo",status="200"} 1`);
    expect(text).toContain(`ncps_upstream_requests_total{upstream="${host}",kind="narinfo",status="404"} 1`);
    expect(text).toContain(`ncps_upstream_requests_total{upstream="${host}",kind="cache_info",status="200"} 1`);
    expect(text).toContain(`ncps_upstream_request_duration_seconds_count{upstream="${host}",kind="narinfo"} 2`);
  });
});
