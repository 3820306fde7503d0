import { Logger } from '@nestjs/common';
import fc from 'fast-check';
import { readdir } from 'node:fs/promises';
import { formatPublicKey, generateKeyPair, NIX32_ALPHABET, SecretKey, serializeNarInfo, signedOnlyBy } from 'src/nix';
import { RunningApp, startApp } from 'test/support/app';
import { FakeUpstream } from 'test/support/fake-upstream';
import { fakePath } from 'test/support/fake-path';
import { RawPlan, RawResult, rawExchange } from 'test/support/raw-http';

/**
 * Property: whatever a client sends — malformed names and hashes, bodies of any kind under any
 * Content-Type, broken chunked framing, lying Content-Lengths, early hang-ups, slow bodies — ncps
 * answers below 500 (or nothing, when the client left), logs no error, leaves no temp file behind
 * and keeps serving. Requests go over raw sockets to a real app with PUT and DELETE enabled, in front
 * of a fake upstream that serves a few real paths (so lookups run the miss and download paths).
 */

const TOKEN = 'T';
const BATCH = 40;
const RUNS = 125; // 125 batches of 40: 5 000 requests

interface StorePathFixture {
  hash: string;
  narName: string;
  nar: Buffer;
  narinfo: string;
}

function fixture(label: string, size: number, signer?: SecretKey): StorePathFixture {
  const { hash, narName, nar, info, narinfo } = fakePath(label, size);
  return { hash, narName, nar, narinfo: signer ? serializeNarInfo(signedOnlyBy(info, signer)) : narinfo };
}

type Framing = 'length' | 'none' | 'chunked' | 'bad-chunked' | 'overdeclared' | 'underdeclared' | 'cl+te' | 'bad-length';
type Behaviour = 'normal' | 'slow' | 'hangup-after-head' | 'hangup-mid-body' | 'hangup-mid-response' | 'keep-alive';

interface FuzzRequest {
  method: string;
  target: string;
  headers: [string, string][];
  body: Buffer;
  framing: Framing;
  behaviour: Behaviour;
  /** Free parameters: chunk sizes, delays, cut points (interpreted per framing/behaviour). */
  knobs: number[];
}

describe('fuzzing every route with hostile requests', () => {
  const upstreamKey = generateKeyPair('fuzz-upstream-1');
  const served = [...Array.from({ length: 6 }, (_, i) => fixture(`served-${i}`, 4096 * (i + 1), upstreamKey.secretKey))];
  // A larger NAR sent slowly, so hang-ups land while it is being downloaded and tailed.
  const slow = fixture('slow', 1536 * 1024, upstreamKey.secretKey);
  const uploads = Array.from({ length: 4 }, (_, i) => fixture(`upload-${i}`, 2048 * (i + 1)));
  const all = [...served, slow, ...uploads];

  let upstream: FakeUpstream;
  let server: RunningApp;
  let port: number;

  beforeAll(async () => {
    upstream = await FakeUpstream.start();
    for (const path of [...served, slow]) upstream.serve(`/${path.hash}.narinfo`, path.narinfo);
    for (const path of served) upstream.serve(`/nar/${path.narName}.nar`, path.nar);
    upstream.route(`/nar/${slow.narName}.nar`, { body: slow.nar, throttle: { chunkSize: 128 * 1024, intervalMs: 25 } });
    server = await startApp({
      'cache-allow-put-verb': true,
      'cache-allow-delete-verb': true,
      'cache-put-token': TOKEN,
      'cache-upstream-url': [upstream.url],
      'cache-upstream-public-key': [formatPublicKey(upstreamKey.publicKey)],
      // Slow bodies in the corpus must be cut well inside the test's time budget.
      'server-request-idle-timeout': '5s',
    });
    port = Number(new URL(server.url).port);
  });

  afterAll(async () => {
    await server?.close();
    await upstream?.stop();
  });

  // --- what goes into a request ---------------------------------------------------------------

  const chars = (alphabet: string, min: number, max = min) =>
    fc.array(fc.constantFrom(...alphabet), { minLength: min, maxLength: max }).map((c) => c.join(''));
  const ascii = fc.string({ unit: 'binary-ascii', maxLength: 40 });
  const anyText = fc.string({ unit: 'grapheme', maxLength: 40 });

  const storeHash = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...all.map((p) => p.hash)) },
    { weight: 3, arbitrary: chars(NIX32_ALPHABET, 32) },
    { weight: 1, arbitrary: chars('abcdefghijklmnopqrstuvwxyz0123456789', 32) }, // e, o, u, t are not nix32
    { weight: 1, arbitrary: chars(NIX32_ALPHABET, 0, 40) },
  );
  const narinfoName = fc.oneof(
    { weight: 6, arbitrary: storeHash.map((h) => `${h}.narinfo`) },
    { weight: 1, arbitrary: fc.tuple(storeHash, fc.constantFrom('.narinf', '.narinfo.xz', '.NARINFO', '', '.nar')).map(([h, e]) => h + e) },
    { weight: 1, arbitrary: anyText.map(encodeURIComponent) },
    { weight: 1, arbitrary: fc.integer({ min: 200, max: 400 }).map((n) => `${'a'.repeat(n)}.narinfo`) },
    { weight: 1, arbitrary: fc.constantFrom('%2e%2e%2fdb.narinfo', '%00.narinfo', '%zz.narinfo', '..', '.', '%2F', '%C0%AE') },
  );
  const narHashPart = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...all.map((p) => p.narName)) },
    { weight: 2, arbitrary: chars(NIX32_ALPHABET, 52) },
    // A 52-character nix32 string whose first character sets bits past the 256 of a sha256.
    { weight: 2, arbitrary: fc.tuple(chars(NIX32_ALPHABET.slice(2), 1), chars(NIX32_ALPHABET, 51)).map(([a, b]) => a + b) },
    { weight: 1, arbitrary: chars('0123456789abcdef', 64) },
    { weight: 1, arbitrary: chars('0123456789ABCDEF', 64) },
    { weight: 1, arbitrary: chars(NIX32_ALPHABET, 0, 60) },
  );
  const narName = fc.oneof(
    {
      weight: 6,
      arbitrary: fc
        .tuple(
          narHashPart,
          fc.constantFrom(
            '.nar',
            '.nar',
            '.nar.xz',
            '.nar.zst',
            '.nar.bz2',
            '.nar.br',
            '.nar.gz',
            '.nar.lz4',
            '.nar.rar',
            '.nar.',
            '.NAR',
            '',
          ),
        )
        .map(([h, e]) => h + e),
    },
    { weight: 1, arbitrary: anyText.map(encodeURIComponent) },
    { weight: 1, arbitrary: fc.constantFrom('..%2F..%2Fetc%2Fpasswd', '%00', '%zz', '.nar', 'x.nar?y=%zz') },
  );
  const fixedPaths = [
    '/nix-cache-info',
    '/upload/nix-cache-info',
    '/pubkey',
    '/health',
    '/healthz',
    '/',
    '/metrics',
    '/nar/',
    '/upload/',
    '//',
    '/nar//x',
    '/%',
    '/?a=%zz',
    '*',
    '/_ncps/downloads/nar/',
  ];
  const target = fc.oneof(
    { weight: 5, arbitrary: narinfoName.map((n) => `/${n}`) },
    { weight: 2, arbitrary: narinfoName.map((n) => `/upload/${n}`) },
    { weight: 5, arbitrary: narName.map((n) => `/nar/${n}`) },
    { weight: 2, arbitrary: narName.map((n) => `/upload/nar/${n}`) },
    { weight: 2, arbitrary: narName.map((n) => `/_ncps/downloads/nar/${n}`) },
    { weight: 3, arbitrary: fc.constantFrom(...fixedPaths) },
    { weight: 1, arbitrary: ascii.map((s) => `/${s}`) }, // raw bytes: spaces, controls, anything
  );
  const method = fc.oneof(
    { weight: 5, arbitrary: fc.constant('GET') },
    { weight: 2, arbitrary: fc.constant('HEAD') },
    { weight: 5, arbitrary: fc.constant('PUT') },
    { weight: 2, arbitrary: fc.constant('DELETE') },
    { weight: 1, arbitrary: fc.constantFrom('POST', 'OPTIONS', 'PATCH', 'TRACE', 'get', 'BREW', 'PUT /x', '') },
  );
  const authorization = fc.oneof(
    { weight: 12, arbitrary: fc.constant(`Bearer ${TOKEN}`) },
    { weight: 3, arbitrary: fc.constant(`Basic ${Buffer.from(`nix:${TOKEN}`).toString('base64')}`) },
    { weight: 3, arbitrary: fc.constant(undefined) },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        'Bearer',
        'Bearer wrong',
        'Basic !!!',
        'Basic',
        `Basic ${Buffer.from(TOKEN).toString('base64')}`,
        `Bearer ${'x'.repeat(2000)}`,
        'Digest x=1',
      ),
    },
    { weight: 1, arbitrary: ascii },
  );
  const contentType = fc.oneof(
    { weight: 4, arbitrary: fc.constant(undefined) },
    {
      weight: 6,
      arbitrary: fc.constantFrom(
        'application/x-www-form-urlencoded',
        'application/json',
        'multipart/form-data; boundary=xyz',
        'text/plain',
        'text/x-nix-narinfo',
        'application/x-nix-nar',
        'application/octet-stream',
        ';;;',
        'application/json; charset=utf-16',
        '*/*',
      ),
    },
    { weight: 1, arbitrary: ascii },
  );
  const extraHeader = fc.oneof(
    fc.constantFrom<[string, string]>(
      ['accept-encoding', 'zstd'],
      ['accept-encoding', 'gzip, zstd;q=0'],
      ['range', 'bytes=0-99'],
      ['range', 'bytes=100-'],
      ['range', 'bytes=-50'],
      ['range', 'bytes=5-2'],
      ['range', 'bytes=abc'],
      ['range', 'bytes=0-1,5-6'],
      ['range', `bytes=0-${Number.MAX_SAFE_INTEGER}0`],
      ['content-encoding', 'gzip'],
      ['expect', '100-continue'],
      ['x-request-id', 'x'.repeat(300)],
      ['transfer-encoding', 'gzip, chunked'],
    ),
    fc.tuple(fc.constantFrom('range', 'accept-encoding', 'x-request-id', 'if-none-match'), ascii),
  );
  const narinfoTexts = all.map((p) => p.narinfo);
  const body = fc.oneof(
    { weight: 3, arbitrary: fc.constant(Buffer.alloc(0)) },
    { weight: 3, arbitrary: fc.uint8Array({ maxLength: 4096 }).map((b) => Buffer.from(b)) },
    { weight: 3, arbitrary: fc.constantFrom(...narinfoTexts).map((t) => Buffer.from(t)) },
    {
      weight: 3,
      arbitrary: fc.tuple(fc.constantFrom(...narinfoTexts), fc.nat(), anyText).map(([t, at, s]) => {
        const i = at % (t.length + 1);
        return Buffer.from(t.slice(0, i) + s + t.slice(i));
      }),
    },
    { weight: 2, arbitrary: fc.constantFrom(...all.map((p) => p.nar)) },
    { weight: 1, arbitrary: fc.integer({ min: 1024 * 1024 - 8, max: 1024 * 1024 + 4096 }).map((n) => Buffer.alloc(n, 0x41)) },
  );

  const randomRequest: fc.Arbitrary<FuzzRequest> = fc
    .record({
      method,
      target,
      authorization,
      contentType,
      extra: fc.array(extraHeader, { maxLength: 2 }),
      body,
      framing: fc.constantFrom<Framing>(
        'length',
        'length',
        'length',
        'none',
        'chunked',
        'chunked',
        'bad-chunked',
        'overdeclared',
        'underdeclared',
        'cl+te',
        'bad-length',
      ),
      behaviour: fc.constantFrom<Behaviour>(
        'normal',
        'normal',
        'normal',
        'slow',
        'keep-alive',
        'hangup-after-head',
        'hangup-mid-body',
        'hangup-mid-response',
      ),
      knobs: fc.array(fc.nat({ max: 1_000_000 }), { minLength: 6, maxLength: 6 }),
    })
    .map(({ authorization: auth, contentType: type, extra, ...rest }) => {
      const headers: [string, string][] = [];
      if (auth !== undefined) headers.push(['authorization', auth]);
      if (type !== undefined) headers.push(['content-type', type]);
      return { ...rest, headers: [...headers, ...extra] };
    });

  // The uploads Nix makes: the NAR, then its narinfo, with the put token (they land, or are refused with a 4xx).
  const validUpload: fc.Arbitrary<FuzzRequest> = fc
    .tuple(
      fc.constantFrom(...uploads),
      fc.boolean(),
      fc.constantFrom<Framing>('length', 'chunked'),
      fc.constantFrom<Behaviour>('normal', 'slow'),
      fc.array(fc.nat({ max: 1_000_000 }), { minLength: 6, maxLength: 6 }),
    )
    .map(([path, nar, framing, behaviour, knobs]) => ({
      method: 'PUT',
      target: nar ? `/upload/nar/${path.narName}.nar` : `/upload/${path.hash}.narinfo`,
      headers: [
        ['authorization', `Bearer ${TOKEN}`],
        ['content-type', nar ? 'application/x-nix-nar' : 'text/x-nix-narinfo'],
      ],
      body: nar ? path.nar : Buffer.from(path.narinfo),
      framing,
      behaviour,
      knobs,
    }));

  const request = fc.oneof({ weight: 9, arbitrary: randomRequest }, { weight: 1, arbitrary: validUpload });

  // --- how it goes over the wire ----------------------------------------------------------------

  /**
   * At most ~2 000 chunks a body: tiny chunks are legal, but each costs the server a write of its own
   * while an upload is spooled (a known cost, not what this test is after), and the run must stay short.
   */
  function chunked(data: Buffer, wantedPieceSize: number): Buffer {
    const pieceSize = Math.max(wantedPieceSize, Math.ceil(data.length / 2000));
    const parts: Buffer[] = [];
    for (let at = 0; at < data.length; at += pieceSize) {
      const piece = data.subarray(at, at + pieceSize);
      parts.push(Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n'));
    }
    parts.push(Buffer.from('0\r\n\r\n'));
    return Buffer.concat(parts);
  }

  function badChunked(data: Buffer, knob: number): Buffer {
    const good = chunked(data, Math.max(1, knob % 5000));
    switch (knob % 5) {
      case 0:
        return Buffer.concat([Buffer.from('zz\r\n'), data, Buffer.from('\r\n0\r\n\r\n')]);
      case 1:
        return good.subarray(0, Math.max(0, good.length - 5)); // the last chunk never comes
      case 2:
        return Buffer.concat([Buffer.from(`${(data.length + 10).toString(16)}\r\n`), data, Buffer.from('\r\n0\r\n\r\n')]);
      case 3:
        return Buffer.concat([Buffer.from('ffffffffffffffffff\r\n'), data]);
      default:
        return Buffer.concat([Buffer.from(`${data.length.toString(16)}\n`), data, Buffer.from('0\r\n\r\n')]); // bare LF, no chunk CRLF
    }
  }

  /** Turns a generated request into bytes and a client behaviour. Every plan ends: it completes, or the client leaves. */
  function planOf(r: FuzzRequest): RawPlan {
    const [k0, k1, k2, k3] = r.knobs;
    // keep-alive: a second request follows on the same connection, and must be parsed where the first ended.
    const headers = [['host', 'fuzz'], ['connection', r.behaviour === 'keep-alive' ? 'keep-alive' : 'close'], ...r.headers];
    let payload: Buffer = r.body;
    let leaveAfterBody = false;
    switch (r.framing) {
      case 'length':
        headers.push(['content-length', String(payload.length)]);
        break;
      case 'none':
        payload = Buffer.alloc(0);
        break;
      case 'chunked':
        headers.push(['transfer-encoding', 'chunked']);
        payload = chunked(payload, 1 + (k0 % 8192));
        break;
      case 'bad-chunked':
        headers.push(['transfer-encoding', 'chunked']);
        payload = badChunked(payload, k0);
        leaveAfterBody = true;
        break;
      case 'overdeclared':
        headers.push(['content-length', String(payload.length + 1 + (k0 % 100_000))]);
        leaveAfterBody = true; // the rest never comes
        break;
      case 'underdeclared':
        headers.push(['content-length', String(Math.max(0, payload.length - 1 - (k0 % 64)))]);
        break;
      case 'cl+te':
        headers.push(['content-length', String(payload.length)], ['transfer-encoding', 'chunked']);
        payload = chunked(payload, 1 + (k0 % 8192));
        break;
      case 'bad-length':
        headers.push(
          ...[
            [['content-length', '-1']],
            [['content-length', 'abc']],
            [['content-length', '1, 2']],
            [
              ['content-length', '3'],
              ['content-length', '4'],
            ],
          ][k0 % 4],
        );
        break;
    }
    const head = `${r.method} ${r.target} HTTP/1.1\r\n${headers.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
    const plan: RawPlan = { head, body: [payload], timeoutMs: 20_000 };
    switch (r.behaviour) {
      case 'slow': {
        const pieces = 2 + (k1 % 5);
        const size = Math.ceil(payload.length / pieces) || 1;
        plan.body = Array.from({ length: pieces }, (_, i) => payload.subarray(i * size, (i + 1) * size));
        plan.pieceDelayMs = 10 + (k2 % 70);
        break;
      }
      case 'hangup-after-head':
        plan.body = [];
        plan.hangUpAfterBodyMs = k1 % 30;
        break;
      case 'hangup-mid-body':
        plan.body = [payload.subarray(0, k1 % (payload.length + 1))];
        plan.hangUpAfterBodyMs = k2 % 50;
        break;
      case 'hangup-mid-response':
        plan.hangUpAfterResponseBytes = 1 + (k3 % 4096);
        break;
      case 'keep-alive':
        plan.body = [payload, Buffer.from('GET /healthz HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n\r\n')];
        break;
    }
    if (leaveAfterBody && plan.hangUpAfterBodyMs === undefined) plan.hangUpAfterBodyMs = 50 + (k3 % 200);
    return plan;
  }

  const describeRequest = (r: FuzzRequest) =>
    `${JSON.stringify(r.method)} ${JSON.stringify(r.target.slice(0, 120))} framing=${r.framing} behaviour=${r.behaviour} ` +
    `headers=${JSON.stringify(r.headers.map(([k, v]) => [k, v.slice(0, 60)]))} body=${r.body.length}B knobs=${r.knobs.join(',')}`;

  it('answers every one of 5 000 hostile requests below 500, logs no error, leaves no temp file, and keeps serving', async () => {
    const errorLogs = jest.spyOn(Logger.prototype, 'error');
    const histogram = new Map<string, number>();
    const failures: string[] = [];
    let sent = 0;
    const started = Date.now();
    const count = (key: string) => histogram.set(key, (histogram.get(key) ?? 0) + 1);

    try {
      await fc.assert(
        fc.asyncProperty(fc.array(request, { minLength: BATCH, maxLength: BATCH }), async (batch) => {
          const results: RawResult[] = await Promise.all(batch.map((r) => rawExchange(port, planOf(r))));
          sent += batch.length;
          const bad: string[] = [];
          results.forEach((res, i) => {
            if (res.statuses.length === 0) count(res.timedOut ? 'timeout' : res.hungUp ? 'none (client left)' : 'none (closed)');
            for (const status of res.statuses) count(String(status));
            const serverError = res.statuses.some((s) => s >= 500);
            if (serverError || res.timedOut)
              bad.push(`${res.timedOut ? 'TIMEOUT' : res.statuses.join('+')} ← ${describeRequest(batch[i])}`);
          });
          failures.push(...bad);
          return bad.length === 0;
        }),
        { numRuns: RUNS, endOnFailure: true },
      );
    } catch (e) {
      // The property's failures are listed below, one line per request; fast-check's report is the whole batch.
      if (failures.length === 0) throw e;
    } finally {
      const seconds = (Date.now() - started) / 1000;
      const table = [...histogram.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}: ${v}`);
      console.log(`fuzz: ${sent} requests in ${seconds.toFixed(1)} s\n${table.join('\n')}`);
      errorLogs.mockRestore();
    }

    expect(failures).toEqual([]);
    expect(sent).toBeGreaterThanOrEqual(5000);
    expect(errorLogs.mock.calls.map((args) => JSON.stringify(args).slice(0, 400))).toEqual([]);

    // Downloads and uploads the fuzz started finish or fail on their own; none may leave its temp file.
    const tempFiles = async () =>
      (await readdir(server.config.cache.tempPath).catch(() => [] as string[])).filter((f) => /^ncps-dl-.*\.tmp$/.test(f));
    const deadline = Date.now() + 15_000;
    while ((await tempFiles()).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    expect(await tempFiles()).toEqual([]);

    // Still serving: liveness, and a real lookup through to the upstream.
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    const auth = { authorization: `Bearer ${TOKEN}` };
    const fresh = served[0];
    const narinfo = await fetch(`${server.url}/${fresh.hash}.narinfo`, { headers: auth });
    expect(narinfo.status).toBe(200);
    const nar = await fetch(`${server.url}/nar/${fresh.narName}.nar`, { headers: auth });
    expect(nar.status).toBe(200);
    expect(Buffer.from(await nar.arrayBuffer()).equals(fresh.nar)).toBe(true);
  }, 240_000);
});
