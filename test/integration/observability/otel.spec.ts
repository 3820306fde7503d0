import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { FakeUpstream, startBlackhole } from 'test/support/fake-upstream';
import { FakePath, fakePath } from 'test/support/fake-path';
import { NcpsProcess } from 'test/support/ncps-process';
import { OtlpReceiver, ReceivedSpan } from 'test/support/otlp-receiver';
import { until } from 'test/support/wait';

const ROOT = join(__dirname, '../../..');
const SERVER = 2;
const CLIENT = 3;
const ERROR = 2;

/** A caller's W3C trace context: the trace and the span (in the caller) that ncps's spans must hang under. */
function callerContext(): { traceId: string; spanId: string; traceparent: string } {
  const traceId = randomBytes(16).toString('hex');
  const spanId = randomBytes(8).toString('hex');
  return { traceId, spanId, traceparent: `00-${traceId}-${spanId}-01` };
}

function servePath(upstream: FakeUpstream, path: FakePath): void {
  upstream.serve(`/${path.hash}.narinfo`, path.narinfo);
  upstream.serve(path.narPath, path.nar);
}

/**
 * OpenTelemetry tracing, on the built server as an operator runs it (the OTLP exporter
 * loads node:http with import(), which Jest's module sandbox cannot run): with --otel-enabled, one
 * miss is a tree of spans sent as OTLP/HTTP to a local receiver — the request under the caller's
 * traceparent, and under it the database lookup, the lock wait, the upstream requests (which carry
 * the trace on to the upstream) and the storage commit. SIGTERM sends the spans still batched, so
 * the test waits for the process to exit, never for the export schedule.
 */
describe('OpenTelemetry tracing', () => {
  let receiver: OtlpReceiver;
  let upstream: FakeUpstream;
  let ncps: NcpsProcess | undefined;
  let dataDir: string;

  beforeEach(async () => {
    receiver = await OtlpReceiver.start();
    upstream = await FakeUpstream.start();
    dataDir = await mkdtemp(join(tmpdir(), 'ncps-otel-'));
  });
  afterEach(async () => {
    await ncps?.stop();
    ncps = undefined;
    await upstream.stop();
    await receiver.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  const start = async (flags: string[], env: NodeJS.ProcessEnv = {}): Promise<NcpsProcess> => {
    ncps = await NcpsProcess.start(
      [
        `--cache-data-dir=${dataDir}`,
        `--cache-upstream-url=${upstream.url}`,
        `--cache-upstream-allow-unsigned=${upstream.url}`,
        '--cache-upstream-public-key=',
        ...flags,
      ],
      env,
    );
    return ncps;
  };
  /** Stops the server as systemd does; it exits once its downloads committed and its spans were sent. */
  const stop = async (): Promise<void> => {
    expect(await ncps!.kill('SIGTERM')).toMatchObject({ code: 0 });
  };

  it('traces a narinfo miss and a NAR miss as one tree under the caller, passes the trace on upstream, and traces a hit', async () => {
    const path = fakePath('traced', 300_000);
    servePath(upstream, path);
    const server = await start(['--otel-enabled', `--otel-endpoint=${receiver.url}`]);
    const caller = callerContext();
    const headers = { traceparent: caller.traceparent };

    const narinfo = await fetch(`${server.url}/${path.hash}.narinfo`, { headers });
    expect(narinfo.status).toBe(200);
    await narinfo.text();
    const nar = await fetch(`${server.url}${path.narPath}`, { headers });
    expect(nar.status).toBe(200);
    expect(Buffer.from(await nar.arrayBuffer()).equals(path.nar)).toBe(true);
    // A hit is a request span too: with tracing on, no request is answered out of the hooks' sight.
    const hitCaller = callerContext();
    const hit = await fetch(`${server.url}/${path.hash}.narinfo`, { headers: { traceparent: hitCaller.traceparent } });
    expect(hit.status).toBe(200);
    await hit.text();
    await stop();
    await until('the commit span arrived', () => receiver.named('storage.commit').length > 0);
    const hitSpans = receiver.spans.filter((s) => s.traceId === hitCaller.traceId);
    expect(hitSpans.find((s) => s.name === 'GET /:hash.narinfo')).toMatchObject({ kind: SERVER, parentSpanId: hitCaller.spanId });

    const ofTrace = receiver.spans.filter((s) => s.traceId === caller.traceId);
    const narinfoRequest = ofTrace.find((s) => s.name === 'GET /:hash.narinfo');
    const narRequest = ofTrace.find((s) => s.name === 'GET /nar/:hash.nar');
    for (const request of [narinfoRequest, narRequest]) {
      expect(request).toMatchObject({ kind: SERVER, parentSpanId: caller.spanId, traceId: caller.traceId });
      expect(request!.attributes['http.response.status_code']).toBe(200);
      expect(request!.attributes['http.request.method']).toBe('GET');
    }
    expect(narinfoRequest!.attributes['http.route']).toBe('/:hash.narinfo');
    expect(narinfoRequest!.resource['service.name']).toBe('ncps');

    const under = (span: ReceivedSpan, request: ReceivedSpan): boolean => receiver.ancestors(span).some((a) => a.spanId === request.spanId);
    const underARequest = (span: ReceivedSpan) => [narinfoRequest!, narRequest!].some((request) => under(span, request));

    // The narinfo miss: database lookup, its lock wait, and the upstream GET, each a child of its request.
    const lookup = ofTrace.find((s) => s.name === 'db.narinfo.lookup' && s.parentSpanId === narinfoRequest!.spanId);
    expect(lookup).toBeDefined();
    const narinfoLock = ofTrace.find((s) => s.name === 'lock.wait' && s.attributes['ncps.lock.type'] === 'download:narinfo');
    expect(narinfoLock?.parentSpanId).toBe(narinfoRequest!.spanId);
    const narinfoGet = ofTrace.find((s) => s.kind === CLIENT && s.attributes['ncps.upstream.kind'] === 'narinfo');
    // Run under the lock, but the lock's span is the wait only: the GET belongs to the request.
    expect(narinfoGet?.parentSpanId).toBe(narinfoRequest!.spanId);
    expect(narinfoGet!.attributes['url.full']).toBe(`${upstream.url}/${path.hash}.narinfo`);
    expect(narinfoGet!.attributes['http.response.status_code']).toBe(200);

    // The NAR: one download (the narinfo's prefetch, or the NAR request's own) under one of the
    // requests, with its lock wait, upstream GET and storage commit under it.
    const downloads = ofTrace.filter((s) => s.name === 'nar.download');
    expect(downloads).toHaveLength(1);
    const [download] = downloads;
    expect(underARequest(download)).toBe(true);
    const narLock = ofTrace.find((s) => s.name === 'lock.wait' && s.attributes['ncps.lock.type'] === 'download:nar');
    const narGet = ofTrace.find((s) => s.kind === CLIENT && s.attributes['ncps.upstream.kind'] === 'nar');
    const commit = ofTrace.find((s) => s.name === 'storage.commit');
    for (const span of [narLock, narGet, commit]) expect(span?.parentSpanId).toBe(download.spanId);
    expect(commit!.attributes['ncps.nar.bytes']).toBe(path.nar.length);
    expect(ofTrace.filter((s) => s.status === ERROR)).toEqual([]);

    // The upstream saw each GET's own span as the parent, in the caller's trace.
    const sent = (route: string) => upstream.requests.find((r) => r.url === route)?.headers.traceparent;
    expect(sent(`/${path.hash}.narinfo`)).toBe(`00-${caller.traceId}-${narinfoGet!.spanId}-01`);
    expect(sent(path.narPath)).toBe(`00-${caller.traceId}-${narGet!.spanId}-01`);
  });

  it('log lines of a traced request carry trace_id and reqId; the OTEL_* variables apply', async () => {
    const path = fakePath('logged', 1000);
    servePath(upstream, path);
    const server = await start([], { OTEL_ENABLED: 'true', OTEL_ENDPOINT: receiver.url, OTEL_SERVICE_NAME: 'ncps-under-test' });
    const caller = callerContext();

    const headers = { traceparent: caller.traceparent, 'x-request-id': 'traced-1' };
    const res = await fetch(`${server.url}/${path.hash}.narinfo`, { headers });
    expect(res.status).toBe(200);
    await until('the fetch is logged', () => server.logged('narinfo fetched from upstream').length > 0);
    const [line] = server.logged('narinfo fetched from upstream');
    expect(line).toMatchObject({ reqId: 'traced-1', trace_id: caller.traceId });
    expect(line.span_id).toMatch(/^[0-9a-f]{16}$/);

    await stop();
    await until('the request span arrived', () => receiver.named('GET /:hash.narinfo').length > 0);
    const [request] = receiver.named('GET /:hash.narinfo');
    expect(request.resource['service.name']).toBe('ncps-under-test');
    expect(request.attributes['ncps.request_id']).toBe('traced-1');
  });

  it('a collector that never answers costs the requests nothing, and does not keep ncps from exiting', async () => {
    const collector = await startBlackhole();
    try {
      const path = fakePath('dark-collector', 1000);
      servePath(upstream, path);
      const server = await start(['--otel-enabled', `--otel-endpoint=${collector.url}`]);
      const traceparent = callerContext().traceparent;

      expect((await fetch(`${server.url}/${path.hash}.narinfo`, { headers: { traceparent } })).status).toBe(200);
      expect((await fetch(`${server.url}${path.narPath}`, { headers: { traceparent } })).status).toBe(200);
      await stop();
    } finally {
      await collector.stop();
    }
  });

  it('a request without traceparent starts a trace of its own; background upstream checks are not traced', async () => {
    const path = fakePath('untraced-caller', 1000);
    servePath(upstream, path);
    // The standard variable for the endpoint, as the SDK reads it.
    const server = await start(['--otel-enabled'], { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${receiver.url}/v1/traces` });

    expect((await fetch(`${server.url}/${path.hash}.narinfo`)).status).toBe(200);
    await stop();
    await until('the request span arrived', () => receiver.named('GET /:hash.narinfo').length > 0);

    const [request] = receiver.named('GET /:hash.narinfo');
    expect(request.parentSpanId).toBe('');
    // nix-cache-info is fetched outside any request: no span, and no traceparent sent.
    expect(upstream.requests.find((r) => r.url === '/nix-cache-info')?.headers.traceparent).toBeUndefined();
    expect(receiver.spans.filter((s) => s.kind === CLIENT && s.parentSpanId === '')).toEqual([]);
  });
});

/** Runs the app in a fresh process (its own require.cache), sends a narinfo miss, and lists what it loaded. */
async function childRun(flags: Record<string, string | string[]>, env: NodeJS.ProcessEnv): Promise<string[]> {
  const script = `
    require('reflect-metadata');
    const { startApp } = require('test/support/app');
    (async () => {
      const app = await startApp(${JSON.stringify(flags)});
      const headers = { traceparent: '00-${'1'.repeat(32)}-${'2'.repeat(16)}-01' };
      const res = await fetch(app.url + '/${'0'.repeat(32)}.narinfo', { headers });
      await res.text();
      await app.close();
      const files = Object.keys(require.cache).filter((f) => f.includes('/node_modules/@opentelemetry/'));
      const packages = [...new Set(files.map((f) => f.split('/node_modules/')[1].split('/').slice(0, 2).join('/')))].sort();
      process.stdout.write('\\nLOADED ' + JSON.stringify(packages) + '\\n');
    })().catch((e) => { console.error(e); process.exit(1); });
  `;
  const { stdout } = await promisify(execFile)(process.execPath, ['-r', join(ROOT, 'test/support/lock-child-register.js'), '-e', script], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
  });
  const line = /^LOADED (.*)$/m.exec(stdout)?.[1];
  if (!line) throw new Error(`no result from the child:\n${stdout}`);
  return JSON.parse(line) as string[];
}

describe('OpenTelemetry off (the default)', () => {
  let receiver: OtlpReceiver;
  let upstream: FakeUpstream;

  beforeAll(async () => {
    receiver = await OtlpReceiver.start();
    upstream = await FakeUpstream.start();
  });
  afterAll(async () => {
    await upstream.stop();
    await receiver.stop();
  });

  const upstreamFlags = () => ({ 'cache-upstream-url': [upstream.url], 'cache-upstream-allow-unsigned': [upstream.url] });

  it('sends nothing, even with the standard OTLP endpoint variables set, and loads no OpenTelemetry SDK module', async () => {
    const standardEnv = { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${receiver.url}/v1/traces` };
    const loaded = await childRun(upstreamFlags(), standardEnv);

    expect(receiver.requests).toEqual([]);
    // prom-client (the metrics) loads the bare API package itself; no SDK, exporter or propagator is loaded.
    expect(loaded.filter((p) => p !== '@opentelemetry/api')).toEqual([]);
    // The upstream was asked, without a trace context.
    expect(upstream.requests.some((r) => r.url.endsWith('.narinfo') && r.headers.traceparent === undefined)).toBe(true);
  });

  it('the check sees the SDK when tracing is on (it can fail)', async () => {
    const loaded = await childRun({ ...upstreamFlags(), 'otel-enabled': 'true', 'otel-endpoint': receiver.url }, {});

    expect(loaded).toEqual(expect.arrayContaining(['@opentelemetry/sdk-trace-base', '@opentelemetry/exporter-trace-otlp-http']));
    await until('the spans arrived', () => receiver.spans.length > 0);
  });
});
