import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NarInfoRepository } from 'src/database';
import {
  formatPublicKey,
  generateKeyPair,
  NIX32_ALPHABET,
  nix32Encode,
  parseNarInfo,
  SecretKey,
  serializeNarInfo,
  signedOnlyBy,
} from 'src/nix';
import { SigningKeyService } from 'src/signing';
import { StoragePort } from 'src/storage';
import { RunningApp, startApp } from 'test/support/app';
import { FakeUpstream } from 'test/support/fake-upstream';

/**
 * Against the real app: upstream fetches go only where the operator said
 * (the upstream's own origin, or --cache-upstream-allowed-origin), credentials only to configured
 * upstreams, and a key-less upstream is refused unless allowed unsigned, its narinfos then never
 * signed by us.
 */

interface Path {
  hash: string;
  digest: string;
  nar: Buffer;
  /** The narinfo as the upstream serves it, its URL as given. */
  narinfo: (url?: string) => string;
}

/** A store path of random bytes (uncompressed NAR), its narinfo signed by `key`. */
function makePath(key: SecretKey): Path {
  const hash = Array.from(randomBytes(32), (b) => NIX32_ALPHABET[b % 32]).join('');
  const nar = randomBytes(3000);
  const digest = nix32Encode(createHash('sha256').update(nar).digest());
  const narinfo = (url = `nar/${digest}.nar`) =>
    serializeNarInfo(
      signedOnlyBy(
        {
          storePath: `/nix/store/${hash}-secret-${hash.slice(0, 4)}`,
          url,
          compression: 'none',
          fileHash: `sha256:${digest}`,
          fileSize: nar.length,
          narHash: `sha256:${digest}`,
          narSize: nar.length,
          references: [],
          sigs: [],
        },
        key,
      ),
    );
  return { hash, digest, nar, narinfo };
}

const basic = (login: string, password: string) => `Basic ${Buffer.from(`${login}:${password}`).toString('base64')}`;

describe('upstream fetches go where the operator said', () => {
  const upstreamKey = generateKeyPair('upstream.test-1');
  let upstream: FakeUpstream;
  /** Another port on the same host: an internal service an upstream would like us to fetch from. */
  let secret: FakeUpstream;
  let dir: string;
  let netrc: string;
  const apps: RunningApp[] = [];

  beforeAll(async () => {
    upstream = await FakeUpstream.start();
    secret = await FakeUpstream.start();
    dir = await mkdtemp(join(tmpdir(), 'ncps-origins-'));
    netrc = join(dir, 'netrc');
    // A machine entry for the upstream's host (which is also the secret's host), and a default entry.
    await writeFile(netrc, 'machine 127.0.0.1 login alice password a-pw\ndefault login dflt password d-pw\n');
  });

  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
    upstream.resetCounts();
    secret.resetCounts();
  });

  afterAll(async () => {
    await Promise.all([upstream?.stop(), secret?.stop()]);
    await rm(dir, { recursive: true, force: true });
  });

  async function start(flags: Record<string, unknown> = {}): Promise<RunningApp> {
    const app = await startApp({
      'cache-upstream-url': [upstream.url],
      'cache-upstream-public-key': [formatPublicKey(upstreamKey.publicKey)],
      'netrc-file': netrc,
      ...flags,
    });
    apps.push(app);
    return app;
  }

  /** The narinfo as we serve it, and the NAR it points at. */
  async function get(app: RunningApp, path: Path): Promise<{ narinfo: Response; narUrl?: string; nar?: Response }> {
    const narinfo = await fetch(`${app.url}/${path.hash}.narinfo`);
    if (narinfo.status !== 200) return { narinfo };
    const narUrl = parseNarInfo(await narinfo.text()).url;
    return { narinfo, narUrl, nar: await fetch(`${app.url}/${narUrl}`) };
  }

  async function nothingStored(app: RunningApp, path: Path, narUrl?: string): Promise<void> {
    if (narUrl === undefined) expect(await app.app.get(NarInfoRepository).findByHash(path.hash)).toBeNull();
    else expect(await app.app.get(StoragePort).head(narUrl)).toBeFalsy();
  }

  it('ignores a narinfo whose absolute URL leads to another origin: 404, nothing sent there, nothing stored', async () => {
    const path = makePath(upstreamKey.secretKey);
    upstream.serve(`/${path.hash}.narinfo`, path.narinfo(`${secret.url}/secret/${path.digest}.nar`));
    secret.serve(`/secret/${path.digest}.nar`, path.nar);
    const app = await start();

    const { narinfo } = await get(app, path);

    expect(narinfo.status).toBe(404);
    expect(upstream.count(`/${path.hash}.narinfo`)).toBe(1);
    expect(secret.requests).toEqual([]);
    await nothingStored(app, path);
  });

  it('refuses a NAR redirected to another origin: 502, nothing sent there, nothing stored', async () => {
    const path = makePath(upstreamKey.secretKey);
    upstream.serve(`/${path.hash}.narinfo`, path.narinfo());
    upstream.route(`/nar/${path.digest}.nar`, { status: 302, headers: { location: `${secret.url}/secret/${path.digest}.nar` } });
    secret.serve(`/secret/${path.digest}.nar`, path.nar);
    const app = await start();

    const { narinfo, narUrl, nar } = await get(app, path);

    expect(narinfo.status).toBe(200);
    expect(nar?.status).toBe(502);
    expect(upstream.count(`/nar/${path.digest}.nar`)).toBeGreaterThan(0);
    expect(secret.requests).toEqual([]);
    await nothingStored(app, path, narUrl);
  });

  it('refuses a narinfo lookup redirected to another origin: 404, nothing sent there', async () => {
    const path = makePath(upstreamKey.secretKey);
    upstream.route(`/${path.hash}.narinfo`, { status: 301, headers: { location: `${secret.url}/${path.hash}.narinfo` } });
    secret.serve(`/${path.hash}.narinfo`, path.narinfo());
    const app = await start();

    expect((await get(app, path)).narinfo.status).toBe(404);
    expect(secret.requests).toEqual([]);
    await nothingStored(app, path);
  });

  it('follows both to an allowed origin, sending it no credentials while the upstream gets its own', async () => {
    const absolute = makePath(upstreamKey.secretKey);
    upstream.serve(`/${absolute.hash}.narinfo`, absolute.narinfo(`${secret.url}/secret/${absolute.digest}.nar`));
    secret.serve(`/secret/${absolute.digest}.nar`, absolute.nar);
    const redirected = makePath(upstreamKey.secretKey);
    upstream.serve(`/${redirected.hash}.narinfo`, redirected.narinfo());
    upstream.route(`/nar/${redirected.digest}.nar`, {
      status: 307,
      headers: { location: `${secret.url}/secret/${redirected.digest}.nar` },
    });
    secret.serve(`/secret/${redirected.digest}.nar`, redirected.nar);
    const app = await start({ 'cache-upstream-allowed-origin': [`${secret.url}/`] });

    for (const path of [absolute, redirected]) {
      const { narinfo, nar } = await get(app, path);
      expect(narinfo.status).toBe(200);
      expect(nar?.status).toBe(200);
      expect(Buffer.from(await nar!.arrayBuffer()).equals(path.nar)).toBe(true);
      expect(secret.count(`/secret/${path.digest}.nar`)).toBeGreaterThan(0);
    }
    expect(upstream.requests.length).toBeGreaterThan(0);
    expect(upstream.requests.every((r) => r.headers.authorization === basic('alice', 'a-pw'))).toBe(true);
    expect(secret.requests.length).toBeGreaterThan(0);
    expect(secret.requests.map((r) => r.headers.authorization)).toEqual(secret.requests.map(() => undefined));
  });

  it("gives the netrc default entry to a configured upstream without a machine entry, never to a redirect's target", async () => {
    const path = makePath(upstreamKey.secretKey);
    const viaName = `http://localhost:${upstream.port}`; // no machine entry for "localhost": the default applies
    upstream.serve(`/${path.hash}.narinfo`, path.narinfo());
    upstream.route(`/nar/${path.digest}.nar`, { status: 302, headers: { location: `${secret.url}/secret/${path.digest}.nar` } });
    secret.serve(`/secret/${path.digest}.nar`, path.nar);
    const app = await start({ 'cache-upstream-url': [viaName], 'cache-upstream-allowed-origin': [secret.url] });

    const { nar } = await get(app, path);

    expect(nar?.status).toBe(200);
    expect(upstream.requests.length).toBeGreaterThan(0);
    expect(upstream.requests.every((r) => r.headers.authorization === basic('dflt', 'd-pw'))).toBe(true);
    expect(secret.requests.length).toBeGreaterThan(0);
    expect(secret.requests.every((r) => r.headers.authorization === undefined)).toBe(true);
  });

  it('refuses at start an allowed origin that is not an http(s) origin', async () => {
    await expect(start({ 'cache-upstream-allowed-origin': ['ftp://mirror.example'] })).rejects.toThrow('--cache-upstream-allowed-origin');
    await expect(start({ 'cache-upstream-allowed-origin': [`${secret.url}/some/path`] })).rejects.toThrow('is not an origin');
  });
});

describe('an upstream without a key', () => {
  const signedKey = generateKeyPair('127.0.0.1-1'); // named after the host: applies to 127.0.0.1 only
  const unsignedOwnKey = generateKeyPair('unsigned.example-1'); // the key-less upstream's own, unknown to us
  let signed: FakeUpstream;
  let unsigned: FakeUpstream;
  let unsignedUrl: string;
  const apps: RunningApp[] = [];

  beforeAll(async () => {
    signed = await FakeUpstream.start();
    unsigned = await FakeUpstream.start();
    unsignedUrl = `http://localhost:${unsigned.port}`;
  });

  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });

  afterAll(async () => {
    await Promise.all([signed?.stop(), unsigned?.stop()]);
  });

  const flags = (extra: Record<string, unknown> = {}) => ({
    'cache-upstream-url': [signed.url, unsignedUrl],
    'cache-upstream-public-key': [formatPublicKey(signedKey.publicKey)],
    ...extra,
  });

  it('is refused at start with a message saying how to accept it', async () => {
    await expect(startApp(flags())).rejects.toThrow(
      `upstream ${unsignedUrl} has no public key, so nothing it serves could be verified. Give its key with --cache-upstream-public-key, ` +
        `or accept it unverified with --cache-upstream-allow-unsigned=${unsignedUrl}`,
    );
  });

  it('when allowed unsigned, has its narinfos served with its own signatures only, never ours, even once a key is configured', async () => {
    const fromUnsigned = makePath(unsignedOwnKey.secretKey);
    const fromSigned = makePath(signedKey.secretKey);
    unsigned.serve(`/${fromUnsigned.hash}.narinfo`, fromUnsigned.narinfo()).serve(`/nar/${fromUnsigned.digest}.nar`, fromUnsigned.nar);
    signed.serve(`/${fromSigned.hash}.narinfo`, fromSigned.narinfo()).serve(`/nar/${fromSigned.digest}.nar`, fromSigned.nar);
    const app = await startApp(flags({ 'cache-upstream-allow-unsigned': [`${unsignedUrl}/`] }));
    apps.push(app);
    const ours = app.app.get(SigningKeyService).keyName;
    const sigsOf = async (path: Path, server = app) => {
      const response = await fetch(`${server.url}/${path.hash}.narinfo`);
      expect(response.status).toBe(200);
      return parseNarInfo(await response.text()).sigs.map((sig) => sig.split(':')[0]);
    };

    expect(await sigsOf(fromUnsigned)).toEqual(['unsigned.example-1']);
    expect(await sigsOf(fromSigned)).toEqual(['127.0.0.1-1', ours]);
    expect(await sigsOf(fromUnsigned)).toEqual(['unsigned.example-1']); // from the database this time

    // Same data directory (database, signing key), the upstream's key now trusted: what was stored
    // unverified stays unsigned by us.
    await app.app.close();
    const later = await startApp({
      'cache-data-dir': app.dataDir,
      'cache-upstream-url': [unsignedUrl],
      'cache-upstream-public-key': [formatPublicKey(unsignedOwnKey.publicKey)],
    });
    apps.splice(apps.indexOf(app), 1, later);
    try {
      expect(later.app.get(SigningKeyService).keyName).toBe(ours);
      expect(await sigsOf(fromUnsigned, later)).toEqual(['unsigned.example-1']);
    } finally {
      await later.close();
      apps.splice(apps.indexOf(later), 1);
      await rm(app.dataDir, { recursive: true, force: true }); // the first app's directory, which `later` used
    }
  });
});
