import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatPublicKey, generateKeyPair, parseNarInfo, serializeNarInfo, signedOnlyBy } from 'src/nix';
import { fakePath } from 'test/support/fake-path';
import { ForwardProxy } from 'test/support/forward-proxy';
import { NcpsProcess } from 'test/support/ncps-process';
import { createTestPki, TestPki } from 'test/support/redis-tls';
import { TlsUpstream } from 'test/support/tls-upstream';

/**
 * A corporate network as the process sees it: the proxy and the private CA come from the standard
 * environment variables (HTTPS_PROXY, NO_PROXY, NODE_EXTRA_CA_CERTS) of the real ncps process, and the
 * https upstream is reached only through the proxy's CONNECT tunnel.
 */
describe('ncps behind a forward proxy, with a private CA from NODE_EXTRA_CA_CERTS', () => {
  let pki: TestPki;
  let upstream: TlsUpstream;
  let proxy: ForwardProxy;
  let ncps: NcpsProcess | undefined;
  let dir: string;
  const keys = generateKeyPair('corp-cache-1');
  const path = fakePath('corp', 500);
  const signed = serializeNarInfo(signedOnlyBy(path.info, keys.secretKey));

  beforeAll(async () => {
    pki = createTestPki('DNS:localhost');
    upstream = await TlsUpstream.start(
      pki,
      new Map<string, string | Buffer>([
        [`/${path.hash}.narinfo`, signed],
        [path.narPath, path.nar],
      ]),
    );
    proxy = await ForwardProxy.start();
    dir = await mkdtemp(join(tmpdir(), 'ncps-proxy-e2e-'));
  });

  afterAll(async () => {
    await ncps?.stop();
    await proxy?.stop();
    await upstream?.stop();
    pki?.destroy();
    await rm(dir, { recursive: true, force: true });
  });

  const start = (env: NodeJS.ProcessEnv) =>
    NcpsProcess.start(
      [
        `--cache-data-dir=${join(dir, String(Date.now()))}`,
        '--cache-hostname=ncps-proxy-test',
        `--cache-upstream-url=https://localhost:${upstream.port}`,
        `--cache-upstream-public-key=${formatPublicKey(keys.publicKey)}`,
      ],
      env,
    );

  it('fetches a narinfo and its NAR from an https upstream through the tunnel', async () => {
    ncps = await start({ https_proxy: proxy.url, NO_PROXY: 'example.org', NODE_EXTRA_CA_CERTS: pki.caFile });

    const narinfo = await fetch(`${ncps.url}/${path.hash}.narinfo`);
    expect(narinfo.status).toBe(200);
    expect(parseNarInfo(await narinfo.text()).storePath).toBe(path.info.storePath);
    const nar = await fetch(`${ncps.url}${path.narPath}`);
    expect(nar.status).toBe(200);
    expect(Buffer.from(await nar.arrayBuffer()).equals(path.nar)).toBe(true);

    const tunnels = proxy.relayed.filter(({ method }) => method === 'CONNECT').map(({ target }) => target);
    expect(new Set(tunnels)).toEqual(new Set([`localhost:${upstream.port}`]));
    expect(proxy.relayed.filter(({ method }) => method !== 'CONNECT')).toEqual([]);
    await ncps.stop();
  });

  it('goes direct to a NO_PROXY host, and does not trust the private CA without NODE_EXTRA_CA_CERTS', async () => {
    const relayed = proxy.relayed.length;
    ncps = await start({ HTTPS_PROXY: proxy.url, NO_PROXY: 'localhost', NODE_EXTRA_CA_CERTS: pki.caFile });
    expect((await fetch(`${ncps.url}/${path.hash}.narinfo`)).status).toBe(200);
    expect(proxy.relayed.length).toBe(relayed);
    await ncps.stop();

    const seen = upstream.requests.length;
    ncps = await start({ HTTPS_PROXY: proxy.url });
    expect((await fetch(`${ncps.url}/${path.hash}.narinfo`)).status).not.toBe(200);
    // The tunnel opened, but TLS failed: the upstream never got a request.
    expect(proxy.relayed.length).toBeGreaterThan(relayed);
    expect(upstream.requests.length).toBe(seen);
  });
});
