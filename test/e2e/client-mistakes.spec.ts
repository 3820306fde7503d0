import { Logger } from '@nestjs/common';
import { createHash, randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { nix32Encode } from 'src/nix';
import { RunningApp, startApp } from 'test/support/app';
import { rawExchange } from 'test/support/raw-http';
import { until } from 'test/support/wait';

const TOKEN = 'T';
const HASH = '0'.repeat(32);

/**
 * Each a 5xx seen under fuzzing (test/e2e/fuzz.spec.ts), pinned down: a client's mistake gets a 4xx,
 * a client that hangs up gets nothing, and neither is logged as an error.
 */
describe('client mistakes are 4xx, hang-ups are not errors', () => {
  let server: RunningApp;
  let port: number;
  let errors: jest.SpyInstance;
  let infos: jest.SpyInstance;

  beforeAll(async () => {
    server = await startApp({ 'cache-allow-put-verb': true, 'cache-allow-delete-verb': true, 'cache-put-token': TOKEN });
    port = Number(new URL(server.url).port);
  });
  afterAll(() => server.close());

  beforeEach(() => {
    errors = jest.spyOn(Logger.prototype, 'error');
    infos = jest.spyOn(Logger.prototype, 'log');
  });
  afterEach(() => jest.restoreAllMocks());

  const put = (path: string, body: string | Buffer | undefined, headers: Record<string, string> = {}) =>
    fetch(`${server.url}${path}`, { method: 'PUT', body, headers: { authorization: `Bearer ${TOKEN}`, ...headers } });

  const nar = randomBytes(3000);
  const narName = nix32Encode(createHash('sha256').update(nar).digest());
  const tempFiles = async () =>
    (await readdir(server.config.cache.tempPath).catch(() => [] as string[])).filter((f) => f.startsWith('ncps-dl-'));

  it('refuses a NAR name that is 52 nix32 characters but not a sha256 (bits past 256 set) with 400', async () => {
    const res = await put(`/upload/nar/z${narName.slice(1)}.nar`, nar);
    expect(res.status).toBe(400);
    expect(await res.text()).toMatch(/invalid NAR hash/);
    expect(errors).not.toHaveBeenCalled();
  });

  it("streams the body whatever its Content-Type: curl's default form type, JSON, or none", async () => {
    for (const type of ['application/x-www-form-urlencoded', 'application/json', 'multipart/form-data; boundary=x']) {
      const res = await put(`/${HASH}.narinfo`, 'not a narinfo', { 'content-type': type });
      expect([type, res.status, await res.text()]).toEqual([type, 400, expect.stringMatching(/invalid narinfo/)]);
    }
    // A Content-Type Fastify cannot even parse is its own client error (FST_ERR_CTP_INVALID_MEDIA_TYPE): a 4xx.
    expect((await put(`/${HASH}.narinfo`, 'x', { 'content-type': ';;;' })).status).toBe(415);
    // A real upload sent as curl sends it by default lands.
    const upload = await put(`/upload/nar/${narName}.nar`, nar, { 'content-type': 'application/x-www-form-urlencoded' });
    expect(upload.status).toBe(204);
    expect((await fetch(`${server.url}/nar/${narName}.nar`, { method: 'HEAD' })).headers.get('content-length')).toBe('3000');
    expect(errors).not.toHaveBeenCalled();
  });

  it('answers 400 to an upload without a body (no Content-Length, or 0)', async () => {
    for (const framing of ['', 'Content-Length: 0\r\n']) {
      for (const path of [`/${HASH}.narinfo`, `/nar/${'1'.repeat(52)}.nar`]) {
        const head = `PUT ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\n${framing}Connection: close\r\n\r\n`;
        expect([path, framing, (await rawExchange(port, { head })).statuses]).toEqual([path, framing, [400]]);
      }
    }
    expect(errors).not.toHaveBeenCalled();
  });

  it('answers 400 to broken chunked framing, and logs no error', async () => {
    const head = `PUT /nar/${narName}.nar HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nTransfer-Encoding: chunked\r\n\r\n`;
    const res = await rawExchange(port, { head, body: [Buffer.from('10\r\n0123456789abcdef\r\nzz\r\n')], hangUpAfterBodyMs: 1000 });
    expect(res.statuses).toEqual([400]);
    await until(async () => (await tempFiles()).length === 0);
    expect(await tempFiles()).toEqual([]);
    expect(errors).not.toHaveBeenCalled();
  });

  it.each([
    ['a NAR', `/upload/nar/${'1'.repeat(52)}.nar`],
    ['a narinfo', `/${HASH}.narinfo`],
  ])('takes a client hanging up in the middle of %s upload as no error, and removes its temp file', async (_what, path) => {
    const head = `PUT ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Length: 100000\r\n\r\n`;
    const res = await rawExchange(port, { head, body: [randomBytes(5000)], hangUpAfterBodyMs: 100 });
    expect(res).toMatchObject({ statuses: [], hungUp: true });
    await until(() => infos.mock.calls.some(([, msg]) => msg === 'no answer sent: the connection is closed'));
    const logged = infos.mock.calls.find(([, msg]) => msg === 'no answer sent: the connection is closed')?.[0] as {
      url: string;
      reason: string;
    };
    expect(logged).toMatchObject({ url: path, reason: expect.stringMatching(/aborted/) });
    await until(async () => (await tempFiles()).length === 0);
    expect(await tempFiles()).toEqual([]);
    expect(errors).not.toHaveBeenCalled();
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  });
});
