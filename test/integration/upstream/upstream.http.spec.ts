import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { gzipSync } from 'node:zlib';
import { Registry } from 'prom-client';
import { RequestContext, UpstreamHttpClient } from 'src/upstream/upstream.http';
import { UpstreamMetrics } from 'src/upstream/upstream.metrics';
import { FakeUpstream } from 'test/support/fake-upstream';

async function drain(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe('UpstreamHttpClient', () => {
  let fake: FakeUpstream;
  let other: FakeUpstream;
  let sut: UpstreamHttpClient;
  let context: RequestContext;
  let options: ConstructorParameters<typeof UpstreamHttpClient>[0];

  beforeEach(async () => {
    fake = await FakeUpstream.start();
    other = await FakeUpstream.start();
    // Requests are for the first fake; the second is an allowed origin.
    context = { label: 'test', kind: 'nar', origin: fake.url };
    options = {
      dialTimeoutMs: 300,
      headerTimeoutMs: 300,
      bodyIdleTimeoutMs: 200,
      // Credentials for the first fake's port only, as the service does per host.
      authorization: (url: URL) => (url.port === String(fake.port) ? 'Basic c2VjcmV0' : undefined),
      allowedOrigins: new Set([other.url]),
      metrics: new UpstreamMetrics(new Registry()),
    };
    sut = new UpstreamHttpClient(options);
  });

  afterEach(async () => {
    sut.close();
    await Promise.all([fake.stop(), other.stop()]);
  });

  const url = (path: string, server = fake) => new URL(`${server.url}${path}`);

  /** Answers the first request by resetting the connection, then serves `body`. */
  function resetOnce(path: string, body: string): void {
    let resets = 0;
    fake.route(path, (req, res) => {
      if (resets++ === 0) return void req.socket.destroy();
      res.end(body);
    });
  }

  it('retries a connection reset before the headers, for documents and streams', async () => {
    resetOnce('/doc', 'hello');
    await expect(sut.getDocument(url('/doc'), context)).resolves.toEqual({ status: 200, text: 'hello' });
    expect(fake.count('/doc')).toBe(2);

    resetOnce('/stream', 'bytes');
    expect((await drain((await sut.getStream(url('/stream'), context)).body)).toString()).toBe('bytes');
    expect(fake.count('/stream')).toBe(2);
  });

  it('gives up after two retries', async () => {
    fake.route('/doc', (req) => void req.socket.destroy());
    await expect(sut.getDocument(url('/doc'), context)).rejects.toMatchObject({ reason: 'network', code: 'ECONNRESET' });
    expect(fake.count('/doc')).toBe(3);
  });

  it('retries a document whose body was cut, since nothing was handed over yet', async () => {
    let calls = 0;
    fake.route('/doc', (_req, res) => {
      res.writeHead(200, { 'content-length': 10 });
      if (calls++ === 0) res.write('hel', () => res.socket?.destroy());
      else res.end('helloworld');
    });
    await expect(sut.getDocument(url('/doc'), context)).resolves.toEqual({ status: 200, text: 'helloworld' });
  });

  it('does not retry a refused connection', async () => {
    await other.stop();
    // Nothing listens, so attempts cannot be counted at the upstream: each one is counted as a failure.
    const failed = jest.spyOn(options.metrics, 'failed');
    await expect(sut.getDocument(url('/doc', other), context)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect(failed).toHaveBeenCalledTimes(1);
    failed.mockRestore();
    await other.restart();
  });

  it('fails a NAR body that stalls, after the idle timeout', async () => {
    fake.route('/nar', { body: randomBytes(100_000), stallAfterBytes: 50_000 });
    const { body } = await sut.getStream(url('/nar'), context);
    const started = Date.now();
    await expect(drain(body)).rejects.toMatchObject({ reason: 'timeout' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(180);
  });

  it('does not blame the upstream for a reader that pauses longer than the idle timeout', async () => {
    const nar = randomBytes(4 * 1024 * 1024);
    fake.route('/nar', { body: nar });
    const { body } = await sut.getStream(url('/nar'), context);
    await sleep(600); // the upstream fills the buffers, then waits for us
    expect((await drain(body)).equals(nar)).toBe(true);
  });

  it('reads gzip-encoded documents and refuses unknown encodings', async () => {
    fake.serve('/gz', gzipSync('StoreDir: /nix/store\n'), { 'content-encoding': 'gzip' });
    fake.serve('/xz', 'whatever', { 'content-encoding': 'xz' });
    await expect(sut.getDocument(url('/gz'), context)).resolves.toEqual({ status: 200, text: 'StoreDir: /nix/store\n' });
    await expect(sut.getDocument(url('/xz'), context)).rejects.toMatchObject({ reason: 'unsupported' });
  });

  it('refuses a document larger than 4 MiB', async () => {
    fake.serve('/huge', Buffer.alloc(4 * 1024 * 1024 + 1, 'a'));
    // 4 MiB on a loaded machine may pause longer than the 200 ms idle timeout above: a patient client.
    const patient = new UpstreamHttpClient({ ...options, headerTimeoutMs: 5000, bodyIdleTimeoutMs: 5000 });
    try {
      await expect(patient.getDocument(url('/huge'), context)).rejects.toMatchObject({ reason: 'unsupported' });
    } finally {
      patient.close();
    }
  });

  it('follows redirects to another host without taking the credentials along', async () => {
    fake.route('/nar', { status: 302, headers: { location: `${other.url}/real.nar` } });
    other.serve('/real.nar', 'nar');
    expect((await drain((await sut.getStream(url('/nar'), context)).body)).toString()).toBe('nar');
    expect(fake.requests[0].headers.authorization).toBe('Basic c2VjcmV0');
    expect(other.requests[0].headers.authorization).toBeUndefined();
  });

  it('sends nothing to an origin that is neither the upstream nor allowed: neither the request nor a redirect', async () => {
    const stranger = await FakeUpstream.start();
    try {
      fake.route('/nar', { status: 302, headers: { location: `${stranger.url}/secret` } });
      await expect(sut.getStream(url('/nar'), context)).rejects.toMatchObject({ reason: 'refused' });
      await expect(sut.getDocument(url('/nar'), context)).rejects.toMatchObject({ reason: 'refused' });
      await expect(sut.getStream(url('/secret', stranger), context)).rejects.toMatchObject({ reason: 'refused' });
      await expect(sut.getDocument(url('/doc', other), { ...context, origin: undefined })).resolves.toEqual({ status: 404 });
      expect(stranger.requests).toEqual([]);
    } finally {
      await stranger.stop();
    }
  });

  it('stops following a redirect loop', async () => {
    fake.route('/loop', { status: 301, headers: { location: '/loop' } });
    await expect(sut.getStream(url('/loop'), context)).rejects.toMatchObject({ reason: 'unsupported' });
    expect(fake.count('/loop')).toBe(6);
  });
});
