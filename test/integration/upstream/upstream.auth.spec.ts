import { Logger } from '@nestjs/common';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeUpstream } from 'test/support/fake-upstream';
import { makeNarInfo, startUpstreams, UpstreamHarness } from './upstream.harness';

const basic = (login: string, password: string) => `Basic ${Buffer.from(`${login}:${password}`).toString('base64')}`;

describe('upstream credentials', () => {
  let dir: string;
  let harness: UpstreamHarness | undefined;
  const upstreams: FakeUpstream[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ncps-netrc-'));
  });

  afterEach(async () => {
    await harness?.close();
    harness = undefined;
    await Promise.all(upstreams.splice(0).map((u) => u.stop()));
    await rm(dir, { recursive: true, force: true });
    jest.restoreAllMocks();
  });

  async function upstream(): Promise<FakeUpstream> {
    const started = await FakeUpstream.start();
    upstreams.push(started);
    return started;
  }

  it('sends the netrc credentials of the upstream host, and none to other hosts, on every kind of request', async () => {
    const logged = [jest.spyOn(Logger.prototype, 'log'), jest.spyOn(Logger.prototype, 'warn'), jest.spyOn(Logger.prototype, 'debug')];
    const withAuth = await upstream();
    const withoutAuth = await upstream();
    const made = makeNarInfo();
    withAuth.serve(`/${made.hash}.narinfo`, made.text).serve(`/${made.info.url}`, 'nar bytes');
    const netrc = join(dir, 'netrc');
    await writeFile(netrc, 'machine 127.0.0.1 login alice password s3cret-pw\n');
    harness = await startUpstreams({ urls: [withAuth.url, `http://localhost:${withoutAuth.port}`], netrcFile: netrc });

    const found = await harness.service.findNarInfo(made.hash);
    const nar = await harness.service.fetchNar(found!.narUrl, found!.upstream);
    nar.body.resume();

    const expected = basic('alice', 's3cret-pw');
    expect(withAuth.requests.map((r) => [r.url, r.headers.authorization])).toEqual([
      ['/nix-cache-info', expected],
      [`/${made.hash}.narinfo`, expected],
      [`/${made.info.url}`, expected],
    ]);
    expect(withoutAuth.requests.length).toBeGreaterThan(0);
    expect(withoutAuth.requests.every((r) => r.headers.authorization === undefined)).toBe(true);
    const everything = JSON.stringify([logged.map((spy) => spy.mock.calls), await harness.registry.metrics()]);
    expect(everything).not.toContain('s3cret-pw');
    expect(everything).not.toContain(Buffer.from('alice:s3cret-pw').toString('base64'));
  });

  it('uses credentials written in the upstream URL, which never appear in its name', async () => {
    const secured = await upstream();
    harness = await startUpstreams({ urls: [`http://bob:hunter2@127.0.0.1:${secured.port}/`] });
    await harness.service.checkUpstreams();
    expect(secured.requests[0].headers.authorization).toBe(basic('bob', 'hunter2'));
    expect(harness.service.list()[0].url).toBe(secured.url);
  });

  it('sends a User-Agent naming ncps and its version, and asks for no transfer encoding', async () => {
    const plain = await upstream();
    harness = await startUpstreams({ urls: [plain.url] });
    await harness.service.checkUpstreams();
    expect(plain.requests[0].headers['user-agent']).toMatch(/^ncps\/\d+\.\d+\.\d+/);
    expect(plain.requests[0].headers['accept-encoding']).toBe('identity');
  });

  it('starts without credentials when the netrc file does not exist', async () => {
    const plain = await upstream();
    harness = await startUpstreams({ urls: [plain.url], netrcFile: join(dir, 'missing') });
    await harness.service.checkUpstreams();
    expect(plain.requests[0].headers.authorization).toBeUndefined();
    expect(harness.service.list()[0].healthy).toBe(true);
  });
});
