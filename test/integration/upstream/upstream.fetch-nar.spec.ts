import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { Readable } from 'node:stream';
import { UpstreamUnavailableError } from 'src/upstream';
import { FakeUpstream } from 'test/support/fake-upstream';
import { startUpstreams, UpstreamHarness } from './upstream.harness';

async function drain(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe('UpstreamService.fetchNar', () => {
  const nar = randomBytes(3 * 1024 * 1024 + 17);
  const path = '/nar/1w1fff338fvdw53sqgamddn1b2xgds473pv6y13gizdbqjv4i5p3.nar.xz';
  let fake: FakeUpstream;
  let harness: UpstreamHarness;

  beforeEach(async () => {
    fake = await FakeUpstream.start();
    harness = await startUpstreams({ urls: [fake.url] });
  });

  afterEach(async () => {
    await harness.close();
    await fake.stop();
  });

  const fetch = (url = `${fake.url}${path}`) => harness.service.fetchNar(url, { url: fake.url });

  it('streams the NAR with its Content-Length', async () => {
    fake.route(path, { body: nar, throttle: { chunkSize: 512 * 1024, intervalMs: 5 } });
    const { body, contentLength } = await fetch();
    expect(contentLength).toBe(nar.length);
    expect((await drain(body)).equals(nar)).toBe(true);
    const metrics = await harness.registry.metrics();
    expect(metrics).toContain(`ncps_upstream_requests_total{upstream="127.0.0.1:${fake.port}",kind="nar",status="200"} 1`);
  });

  it('keeps the query string of an opaque URL', async () => {
    fake.route(path, { body: nar });
    await drain((await fetch(`${fake.url}${path}?hash=abc`)).body);
    expect(fake.requests.at(-1)?.url).toBe(`${path}?hash=abc`);
  });

  it('errors, rather than ends, when the upstream cuts the body short of its Content-Length', async () => {
    fake.route(path, { body: nar, cutAfterBytes: 1024 * 1024 });
    const { body, contentLength } = await fetch();
    expect(contentLength).toBe(nar.length);
    await expect(drain(body)).rejects.toMatchObject({ name: 'UpstreamUnavailableError', reason: 'truncated' });
  });

  it('errors when a chunked body ends without its final chunk', async () => {
    fake.route(path, { body: nar, cutAfterBytes: 1000, chunked: true });
    const { body, contentLength } = await fetch();
    expect(contentLength).toBeUndefined();
    await expect(drain(body)).rejects.toBeInstanceOf(UpstreamUnavailableError);
  });

  it('passes a chunked body through whole', async () => {
    fake.route(path, { body: nar, chunked: true });
    expect((await drain((await fetch()).body)).equals(nar)).toBe(true);
  });

  it.each([404, 403, 500])('throws UpstreamUnavailableError for HTTP %i', async (status) => {
    fake.route(path, { status });
    await expect(fetch()).rejects.toMatchObject({ status: 502, reason: 'status', upstreamStatus: status });
  });

  it('throws UpstreamUnavailableError when no headers come within the timeout', async () => {
    fake.route(path, { body: nar, delayMs: Infinity });
    await expect(fetch()).rejects.toMatchObject({ reason: 'timeout' });
  });

  it('throws UpstreamUnavailableError when the upstream is down', async () => {
    await fake.stop();
    await expect(fetch()).rejects.toMatchObject({ reason: 'network', code: 'ECONNREFUSED' });
    await fake.restart();
  });

  it('refuses a URL that is not http(s)', async () => {
    await expect(harness.service.fetchNar('file:///etc/passwd', { url: fake.url })).rejects.toMatchObject({
      reason: 'unsupported',
    });
  });

  it('follows a redirect, as Nix does', async () => {
    fake.route('/nar/moved.nar', { status: 302, headers: { location: path } });
    fake.route(path, { body: nar });
    expect((await drain((await fetch(`${fake.url}/nar/moved.nar`)).body)).equals(nar)).toBe(true);
  });

  it('closes the upstream connection when the reader gives up', async () => {
    let serverSocketClosed: Promise<unknown> | undefined;
    fake.route(path, (req, res) => {
      serverSocketClosed = new Promise((resolve) => req.socket.on('close', resolve)); // (a reset is a close too)
      res.writeHead(200, { 'content-length': nar.length });
      res.write(nar.subarray(0, 64 * 1024)); // then nothing: only the reader can end this
    });
    const { body } = await fetch();
    await once(body, 'data');
    body.destroy();
    const outcome = await Promise.race([
      serverSocketClosed!.then(() => 'closed'),
      sleep(2000, undefined, { ref: false }).then(() => 'still open'),
    ]);
    expect(outcome).toBe('closed');
  });
});
