import { NestFastifyApplication } from '@nestjs/platform-fastify';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApp, listen } from 'src/app';
import { buildConfig } from 'src/config/build-config';
import { resolveOptions } from 'src/config/resolve';
import { parseNarInfo } from 'src/nix';
import { FakeUpstream } from 'test/support/fake-upstream';
import { fakePath } from 'test/support/fake-path';

/** IPv6 end to end: ncps listening on [::1] (--server-addr), with an upstream at http://[::1]:port. */
describe('IPv6', () => {
  let upstream: FakeUpstream;
  let app: NestFastifyApplication;
  let dataDir: string;

  beforeAll(async () => {
    upstream = await FakeUpstream.start({ host: '::1' });
    dataDir = await mkdtemp(join(tmpdir(), 'ncps-ipv6-'));
    const config = buildConfig(
      resolveOptions({
        flags: {
          'server-addr': '[::1]:0',
          'cache-data-dir': dataDir,
          'cache-hostname': 'ncps-test',
          'cache-upstream-url': [upstream.url],
          'cache-upstream-public-key': [],
          'cache-upstream-allow-unsigned': [upstream.url],
          'log-level': 'warn',
        },
        env: {},
      }),
    );
    expect(config.server).toMatchObject({ host: '::1', port: 0 });
    app = await createApp(config);
    await listen(app, config);
  });

  afterAll(async () => {
    await app?.close();
    await upstream?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('listens on [::1] and fetches from an upstream at http://[::1]:port', async () => {
    const address = app.getHttpServer().address();
    expect(address).toMatchObject({ address: '::1', family: 'IPv6' });
    const base = `http://[::1]:${(address as { port: number }).port}`;
    const path = fakePath('ipv6', 300);
    upstream.serve(`/${path.hash}.narinfo`, path.narinfo).serve(path.narPath, path.nar);

    const narinfo = await fetch(`${base}/${path.hash}.narinfo`);
    expect(narinfo.status).toBe(200);
    expect(parseNarInfo(await narinfo.text()).storePath).toBe(path.info.storePath);
    const nar = await fetch(`${base}${path.narPath}`);
    expect(nar.status).toBe(200);
    expect(Buffer.from(await nar.arrayBuffer()).equals(path.nar)).toBe(true);
    expect(upstream.count(`/${path.hash}.narinfo`)).toBe(1);
  });
});
