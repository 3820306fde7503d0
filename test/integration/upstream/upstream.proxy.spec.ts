import { Readable } from 'node:stream';
import { UpstreamUnavailableError } from 'src/upstream';
import { FakeUpstream } from 'test/support/fake-upstream';
import { ForwardProxy } from 'test/support/forward-proxy';
import { createTestPki, TestPki } from 'test/support/redis-tls';
import { TlsUpstream } from 'test/support/tls-upstream';
import { makeNarInfo, startUpstreams, UpstreamHarness } from './upstream.harness';

async function drain(body: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString();
}

describe('upstream requests through a forward proxy (HTTP_PROXY, HTTPS_PROXY, NO_PROXY)', () => {
  let proxy: ForwardProxy;
  let harness: UpstreamHarness | undefined;
  const fakes: FakeUpstream[] = [];

  const fake = async (options: Parameters<typeof FakeUpstream.start>[0] = {}): Promise<FakeUpstream> => {
    const started = await FakeUpstream.start(options);
    fakes.push(started);
    return started;
  };

  beforeEach(async () => {
    proxy = await ForwardProxy.start();
  });

  afterEach(async () => {
    await harness?.close();
    harness = undefined;
    await Promise.all([proxy.stop(), ...fakes.splice(0).map((started) => started.stop())]);
  });

  it('sends http upstream requests through the proxy in absolute form, and NO_PROXY hosts directly', async () => {
    const proxied = await fake();
    const direct = await fake();
    const one = makeNarInfo();
    const two = makeNarInfo();
    proxied.serve(`/${one.hash}.narinfo`, one.text);
    direct.serve(`/${two.hash}.narinfo`, two.text);
    // Lower-case names, as curl and most tools set them; `localhost` is the direct one.
    harness = await startUpstreams({
      urls: [proxied.url, `http://localhost:${direct.port}`],
      env: { http_proxy: proxy.url, no_proxy: 'example.org, localhost' },
    });

    await expect(harness.service.findNarInfo(one.hash)).resolves.toMatchObject({ upstream: { url: proxied.url } });
    await expect(harness.service.findNarInfo(two.hash)).resolves.toMatchObject({ upstream: { url: `http://localhost:${direct.port}` } });

    const relayed = proxy.to(`127.0.0.1:${proxied.port}`).map(({ method, target }) => `${method} ${target}`);
    expect(relayed).toEqual(
      expect.arrayContaining([
        `GET ${proxied.url}/nix-cache-info`,
        `GET ${proxied.url}/${one.hash}.narinfo`,
        `GET ${proxied.url}/${two.hash}.narinfo`,
      ]),
    );
    expect(proxy.to(`localhost:${direct.port}`)).toEqual([]);
    expect(direct.count(`/${two.hash}.narinfo`)).toBe(1);
    // What the proxy relayed reached the upstream: once each, nothing asked twice.
    expect(proxied.count(`/${one.hash}.narinfo`)).toBe(1);
  });

  describe('https upstreams', () => {
    let pki: TestPki;
    let tls: TlsUpstream;
    const made = makeNarInfo();

    beforeAll(async () => {
      pki = createTestPki('DNS:localhost');
      tls = await TlsUpstream.start(pki, new Map([[`/${made.hash}.narinfo`, made.text]]));
    });

    afterAll(async () => {
      await tls.stop();
      pki.destroy();
    });

    it('go through a CONNECT tunnel with TLS end to end, over one kept-alive connection', async () => {
      const url = `https://localhost:${tls.port}`;
      harness = await startUpstreams({ urls: [url], env: { HTTPS_PROXY: proxy.url }, flags: { 'cache-upstream-ca-file': pki.caFile } });

      for (let i = 0; i < 3; i++) {
        await expect(harness.service.findNarInfo(made.hash)).resolves.toMatchObject({ upstream: { url } });
      }
      // The health check and three lookups: one tunnel, nothing sent to the proxy in clear.
      expect(proxy.relayed.map(({ method, target }) => `${method} ${target}`)).toEqual([`CONNECT localhost:${tls.port}`]);
      expect(proxy.connections).toBe(1);
      expect(tls.requests.length).toBeGreaterThanOrEqual(4);
    });

    it('check the upstream certificate: against the CA file, and against the upstream host name', async () => {
      // Without the CA file the certificate is not trusted.
      harness = await startUpstreams({ urls: [`https://localhost:${tls.port}`], flags: { 'cache-upstream-https-proxy': proxy.url } });
      await expect(harness.service.lookupNarInfo(made.hash)).resolves.toEqual({ outcome: 'unavailable' });
      expect(harness.service.list()[0].reason).toMatch(/certificate/i);
      await harness.close();

      // Trusted CA, but the certificate names localhost, not 127.0.0.1.
      harness = await startUpstreams({
        urls: [`https://127.0.0.1:${tls.port}`],
        flags: { 'cache-upstream-https-proxy': proxy.url, 'cache-upstream-ca-file': pki.caFile },
      });
      await expect(harness.service.lookupNarInfo(made.hash)).resolves.toEqual({ outcome: 'unavailable' });
      expect(harness.service.list()[0].reason).toMatch(/IP: 127\.0\.0\.1 is not in the cert's list/);
      expect(tls.requests.filter((headers) => headers.host === `127.0.0.1:${tls.port}`)).toEqual([]);
    });

    it('go direct when NO_PROXY names them (with a port)', async () => {
      harness = await startUpstreams({
        urls: [`https://localhost:${tls.port}`],
        env: { HTTPS_PROXY: proxy.url, NO_PROXY: `localhost:${tls.port}` },
        flags: { 'cache-upstream-ca-file': pki.caFile },
      });
      await expect(harness.service.findNarInfo(made.hash)).resolves.not.toBeNull();
      expect(proxy.relayed).toEqual([]);
    });
  });

  it("gives the proxy its own credentials only, and the upstream's credentials to the upstream only", async () => {
    await proxy.stop();
    proxy = await ForwardProxy.start({ authorization: `Basic ${Buffer.from('puser:ppass').toString('base64')}` });
    const withCredentials = await fake();
    const open = await fake();
    const one = makeNarInfo();
    withCredentials.serve(`/${one.hash}.narinfo`, one.text);
    const withUserInfo = `http://alice:s3cret@127.0.0.1:${withCredentials.port}`;
    harness = await startUpstreams({
      urls: [withUserInfo, open.url],
      allowUnsigned: [withUserInfo, open.url],
      flags: { 'cache-upstream-http-proxy': `http://puser:ppass@127.0.0.1:${proxy.port}` },
    });

    await expect(harness.service.findNarInfo(one.hash)).resolves.toMatchObject({ upstream: { url: withCredentials.url } });

    // The request carrying credentials went through a tunnel; the other in absolute form.
    expect(proxy.to(`127.0.0.1:${withCredentials.port}`).map(({ method }) => method)).toEqual(['CONNECT']);
    expect(proxy.to(`127.0.0.1:${open.port}`).map(({ method }) => method)).toContain('GET');
    for (const { headers } of proxy.relayed) {
      expect(headers['proxy-authorization']).toBe(`Basic ${Buffer.from('puser:ppass').toString('base64')}`);
      expect(headers.authorization).toBeUndefined();
    }
    const expected = `Basic ${Buffer.from('alice:s3cret').toString('base64')}`;
    expect(withCredentials.requests.map(({ headers }) => headers.authorization)).toEqual(withCredentials.requests.map(() => expected));
    for (const { headers } of [...withCredentials.requests, ...open.requests]) expect(headers['proxy-authorization']).toBeUndefined();
    expect(open.requests.map(({ headers }) => headers.authorization)).toEqual(open.requests.map(() => undefined));
  });

  it('reaches an IPv6 upstream, directly and through the proxy', async () => {
    const v6 = await fake({ host: '::1' });
    const made = makeNarInfo();
    v6.serve(`/${made.hash}.narinfo`, made.text);
    expect(v6.url).toBe(`http://[::1]:${v6.port}`);

    harness = await startUpstreams({ urls: [v6.url] });
    await expect(harness.service.findNarInfo(made.hash)).resolves.toMatchObject({ upstream: { url: v6.url } });
    await harness.close();

    harness = await startUpstreams({ urls: [v6.url], env: { HTTP_PROXY: proxy.url } });
    await expect(harness.service.findNarInfo(made.hash)).resolves.toMatchObject({ upstream: { url: v6.url } });
    expect(proxy.to(`[::1]:${v6.port}`).map(({ target }) => target)).toContain(`${v6.url}/${made.hash}.narinfo`);
  });

  it('refuses a proxy it cannot use, naming the option and not the credentials', async () => {
    await expect(startUpstreams({ urls: [], env: { HTTPS_PROXY: 'https://user:hunter2@proxy.corp' } })).rejects.toThrow(
      /^--cache-upstream-https-proxy: https proxies are not supported/,
    );
    await expect(startUpstreams({ urls: [], env: { HTTPS_PROXY: 'socks5://user:hunter2@proxy.corp' } })).rejects.not.toThrow('hunter2');
    await expect(startUpstreams({ urls: [], env: { NO_PROXY: 'example.com:http' } })).rejects.toThrow(
      /^--cache-upstream-no-proxy: "example.com:http"/,
    );
  });
});

describe('politeness to upstreams', () => {
  let harness: UpstreamHarness | undefined;
  const fakes: FakeUpstream[] = [];

  afterEach(async () => {
    jest.restoreAllMocks();
    await harness?.close();
    harness = undefined;
    await Promise.all(fakes.splice(0).map((started) => started.stop()));
  });

  const fake = async (): Promise<FakeUpstream> => {
    const started = await FakeUpstream.start();
    fakes.push(started);
    return started;
  };

  it('caps the NAR downloads open to an upstream at ?max-connections=, queues the rest, and keeps lookups going meanwhile', async () => {
    const upstream = await fake();
    let active = 0;
    let most = 0;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let arrived!: () => void;
    const twoArrived = new Promise<void>((resolve) => (arrived = resolve));
    upstream.route('/nar/x.nar', async (_req, res) => {
      active++;
      most = Math.max(most, active);
      res.once('close', () => active--);
      if (active === 2) arrived();
      await gate;
      res.end('nar bytes');
    });
    const made = makeNarInfo();
    upstream.serve(`/${made.hash}.narinfo`, made.text);
    const url = `${upstream.url}?max-connections=2`;
    harness = await startUpstreams({ urls: [url] });
    const service = harness.service;

    const downloads = Array.from({ length: 5 }, () =>
      service.fetchNar(`${upstream.url}/nar/x.nar`, { url: upstream.url }).then(({ body }) => drain(body)),
    );
    await twoArrived;
    // NAR downloads hold both connections; a narinfo lookup has its own pool and is answered.
    await expect(service.findNarInfo(made.hash)).resolves.not.toBeNull();
    expect(upstream.count('/nar/x.nar')).toBe(2);

    release();
    await expect(Promise.all(downloads)).resolves.toEqual(Array(5).fill('nar bytes'));
    expect(upstream.count('/nar/x.nar')).toBe(5);
    expect(most).toBe(2);
  });

  it('fails a narinfo lookup that finds every connection busy after the dial timeout, rather than queue it', async () => {
    const upstream = await fake();
    const [held, queued] = [makeNarInfo(), makeNarInfo()];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let arrived!: () => void;
    const heldArrived = new Promise<void>((resolve) => (arrived = resolve));
    upstream.route(`/${held.hash}.narinfo`, async (_req, res) => {
      arrived();
      await gate;
      res.end(held.text);
    });
    upstream.serve(`/${queued.hash}.narinfo`, queued.text);
    // Headers may take long; a connection must come within the dial timeout (300 ms).
    harness = await startUpstreams({ urls: [`${upstream.url}?max-connections=1`], responseHeaderTimeout: '30s' });

    const first = harness.service.lookupNarInfo(held.hash);
    await heldArrived;
    await expect(harness.service.lookupNarInfo(queued.hash)).resolves.toEqual({ outcome: 'unavailable' });
    expect(upstream.count(`/${queued.hash}.narinfo`)).toBe(0);
    release();
    await expect(first).resolves.toMatchObject({ outcome: 'found' });
    await expect(harness.service.lookupNarInfo(queued.hash)).resolves.toMatchObject({ outcome: 'found' });
  });

  it('reuses kept-alive connections for requests one after another', async () => {
    const upstream = await fake();
    const ports = new Set<number>();
    const made = makeNarInfo();
    upstream.route(`/${made.hash}.narinfo`, (req, res) => {
      ports.add(req.socket.remotePort ?? 0);
      res.end(made.text);
    });
    harness = await startUpstreams({ urls: [upstream.url] });
    for (let i = 0; i < 4; i++) await expect(harness.service.findNarInfo(made.hash)).resolves.not.toBeNull();
    expect(upstream.count(`/${made.hash}.narinfo`)).toBe(4);
    expect(ports.size).toBe(1);
  });

  it('skips an upstream that answered 429 with Retry-After until that time, never taking it for "not found"', async () => {
    const busy = await fake();
    const other = await fake();
    const [first, second, missing, later] = [makeNarInfo(), makeNarInfo(), makeNarInfo(), makeNarInfo()];
    busy.route(`/${first.hash}.narinfo`, { status: 429, headers: { 'retry-after': '120' } });
    for (const made of [first, second, later]) other.serve(`/${made.hash}.narinfo`, made.text);
    busy.serve(`/${later.hash}.narinfo`, later.text);
    // The busy upstream is preferred: it is asked first whenever it is not skipped.
    harness = await startUpstreams({ urls: [`${busy.url}?priority=10`, `${other.url}?priority=20`] });
    const service = harness.service;
    const start = Date.now();

    await expect(service.findNarInfo(first.hash)).resolves.toMatchObject({ upstream: { url: other.url } });
    expect(busy.count(`/${first.hash}.narinfo`)).toBe(1);
    expect(service.list()[0]).toMatchObject({ url: busy.url, healthy: true, retryAfter: expect.any(String) });
    expect(Date.parse(service.list()[0].retryAfter ?? '')).toBeGreaterThanOrEqual(start + 120_000);
    expect((await harness.health.check()).upstreams).toMatchObject({
      upstreams: [{ url: busy.url, retryAfter: service.list()[0].retryAfter }, { url: other.url }],
    });

    // Skipped: not asked, the other upstream answers.
    await expect(service.findNarInfo(second.hash)).resolves.toMatchObject({ upstream: { url: other.url } });
    expect(busy.count(`/${second.hash}.narinfo`)).toBe(0);
    // A miss everywhere else is not certain while it is skipped.
    await expect(service.lookupNarInfo(missing.hash)).resolves.toEqual({ outcome: 'unavailable' });
    // Nor probed, nor asked for NARs: those fail at once.
    const probes = busy.count('/nix-cache-info');
    await service.checkUpstreams();
    expect(busy.count('/nix-cache-info')).toBe(probes);
    const refused = service.fetchNar(`${busy.url}/nar/x.nar`, { url: busy.url });
    await expect(refused).rejects.toBeInstanceOf(UpstreamUnavailableError);
    await expect(refused).rejects.toMatchObject({ reason: 'throttled' });
    expect(busy.count('/nar/x.nar')).toBe(0);

    // Once the time has passed it is asked again, and wins by priority.
    jest.spyOn(Date, 'now').mockReturnValue(start + 121_000);
    await expect(service.findNarInfo(later.hash)).resolves.toMatchObject({ upstream: { url: busy.url } });
    expect(busy.count(`/${later.hash}.narinfo`)).toBe(1);
    expect(service.list()[0].retryAfter).toBeUndefined();
  });

  it('skips an upstream whose NAR download answered 503 with a Retry-After date', async () => {
    const busy = await fake();
    const made = makeNarInfo();
    busy.route('/nar/x.nar', { status: 503, headers: { 'retry-after': new Date(Date.now() + 60_000).toUTCString() } });
    busy.serve(`/${made.hash}.narinfo`, made.text);
    harness = await startUpstreams({ urls: [busy.url] });

    await expect(harness.service.fetchNar(`${busy.url}/nar/x.nar`, { url: busy.url })).rejects.toMatchObject({
      reason: 'status',
      upstreamStatus: 503,
    });
    await expect(harness.service.lookupNarInfo(made.hash)).resolves.toEqual({ outcome: 'unavailable' });
    expect(busy.count(`/${made.hash}.narinfo`)).toBe(0);
  });
});
