import { createHash, randomBytes } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { mkdtemp } from 'node:fs/promises';
import { hostname, networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatPublicKey, generateKeyPair, nix32Encode, serializeNarInfo, signedOnlyBy, NarInfo } from 'src/nix';
import { FakeUpstream, RouteBehaviour } from 'test/support/fake-upstream';
import { createTestDatabase, TestDatabase } from 'test/support/databases';
import { NcpsProcess, NcpsProcessOptions } from 'test/support/ncps-process';
import { S3rverHandle, startS3rver } from 'test/support/s3rver';

export interface UpstreamNar {
  hash: string;
  /** Path of the NAR on the upstream, and our URL for it (named by FileHash). */
  upstreamPath: string;
  ourPath: string;
  sha256: string;
  size: number;
  body: Buffer;
}

/** A signed narinfo plus an uncompressed "NAR" of random bytes, served by a fake upstream. */
export function publishNar(
  upstream: FakeUpstream,
  secret: ReturnType<typeof generateKeyPair>['secretKey'],
  size: number,
  name: string,
  behaviour: Omit<RouteBehaviour, 'body'> = {},
): UpstreamNar {
  const body = randomBytes(size);
  const digest = createHash('sha256').update(body).digest();
  const hash = nix32Encode(randomBytes(20));
  const fileHash = nix32Encode(digest);
  const info: NarInfo = {
    storePath: `/nix/store/${hash}-${name}`,
    url: `nar/${fileHash}.nar`,
    compression: 'none',
    fileHash: `sha256:${fileHash}`,
    fileSize: size,
    narHash: `sha256:${fileHash}`,
    narSize: size,
    references: [],
    sigs: [],
  };
  upstream.serve(`/${hash}.narinfo`, serializeNarInfo(signedOnlyBy(info, secret)));
  upstream.route(`/nar/${fileHash}.nar`, { ...behaviour, body });
  return { hash, upstreamPath: `/nar/${fileHash}.nar`, ourPath: `/nar/${fileHash}.nar`, sha256: digest.toString('hex'), size, body };
}

/** Shared backends of a cluster: PostgreSQL, S3 (s3rver), Redis (own key prefix), an upstream. */
export class ClusterBackends {
  readonly key = generateKeyPair('upstream.test-1');
  readonly prefix = `ncps-ha-${randomBytes(4).toString('hex')}:`;
  instances: NcpsProcess[] = [];

  private constructor(
    readonly db: TestDatabase,
    readonly s3: S3rverHandle,
    readonly upstream: FakeUpstream,
    readonly scratch: string,
  ) {}

  static async start(): Promise<ClusterBackends> {
    await expectHostnameOfThisMachine();
    const [db, s3, upstream, scratch] = await Promise.all([
      createTestDatabase('postgres'),
      startS3rver(),
      FakeUpstream.start(),
      mkdtemp(join(tmpdir(), 'ncps-ha-')),
    ]);
    return new ClusterBackends(db, s3, upstream, scratch);
  }

  flags(lockBackend: 'redis' | 'postgres', extra: string[] = []): string[] {
    const { s3 } = this;
    return [
      `--cache-hostname=ha-test`,
      `--cache-database-url=${this.db.url}`,
      `--cache-storage-s3-bucket=${s3.bucket}`,
      `--cache-storage-s3-endpoint=${s3.endpoint}`,
      `--cache-storage-s3-region=us-east-1`,
      `--cache-storage-s3-access-key-id=${s3.config.accessKeyId}`,
      `--cache-storage-s3-secret-access-key=${s3.config.secretAccessKey}`,
      `--cache-storage-s3-force-path-style=true`,
      `--cache-lock-backend=${lockBackend}`,
      ...(lockBackend === 'redis' ? ['--cache-redis-addrs=127.0.0.1:6379'] : []),
      `--cache-lock-redis-key-prefix=${this.prefix}`,
      `--cache-upstream-url=${this.upstream.url}`,
      `--cache-upstream-public-key=${formatPublicKey(this.key.publicKey)}`,
      `--cache-data-dir=${this.scratch}`,
      `--cache-temp-path=${join(this.scratch, 'tmp')}`,
      '--server-shutdown-timeout=10s',
      ...extra,
    ];
  }

  /**
   * Instances as an operator starts them: the same flags, --cache-hostname included, listening on every
   * interface, and no --server-advertise-url: each advertises http://<machine hostname>:<its port>.
   */
  async startInstances(n: number, lockBackend: 'redis' | 'postgres', extra: string[] = []): Promise<NcpsProcess[]> {
    // One first, so it migrates and creates the signing key; the others then start together.
    const first = await NcpsProcess.start(this.flags(lockBackend, extra), {}, AS_DEPLOYED);
    const rest = await Promise.all(Array.from({ length: n - 1 }, () => NcpsProcess.start(this.flags(lockBackend, extra), {}, AS_DEPLOYED)));
    this.instances = [first, ...rest];
    return this.instances;
  }

  async stopInstances(): Promise<void> {
    await Promise.all(this.instances.map((i) => i.stop()));
    this.instances = [];
  }

  async dispose(): Promise<void> {
    await this.stopInstances();
    await Promise.all([this.upstream.stop(), this.s3.stop(), this.db.drop()]);
  }
}

const AS_DEPLOYED: NcpsProcessOptions = { everyInterface: true, advertise: false };

/**
 * The instances advertise http://<hostname>:<port> (ncps's default when listening on every interface),
 * so the machine's hostname must resolve to one of its own addresses, as it does on hosts and in
 * containers (/etc/hosts). Fails, naming the cause, where it does not.
 */
async function expectHostnameOfThisMachine(): Promise<void> {
  const name = hostname();
  const own = new Set(Object.values(networkInterfaces()).flatMap((addresses) => (addresses ?? []).map((a) => a.address)));
  const resolved = await lookup(name, { all: true }).catch(() => []);
  if (!resolved.some(({ address }) => own.has(address))) {
    throw new Error(
      `the HA tests run ncps without --server-advertise-url, which then advertises http://${name}:<port>; ` +
        `"${name}" resolves to [${resolved.map((r) => r.address).join(', ')}], none of them an address of this machine (add it to /etc/hosts)`,
    );
  }
}

/** Fetches `url`, hashing the body as it streams; returns status, sha256 and time to first byte. */
export async function fetchHashed(url: string): Promise<{ status: number; sha256: string; bytes: number; ttfbMs: number }> {
  const started = Date.now();
  const res = await fetch(url);
  const hash = createHash('sha256');
  let bytes = 0;
  let ttfbMs = -1;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    if (ttfbMs < 0) ttfbMs = Date.now() - started;
    hash.update(chunk);
    bytes += chunk.length;
  }
  return { status: res.status, sha256: hash.digest('hex'), bytes, ttfbMs };
}
