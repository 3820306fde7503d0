import { randomBytes } from 'node:crypto';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { FakeUpstream } from 'test/support/fake-upstream';
import { NixWorkspace } from 'test/support/nix';
import { RedisCluster } from 'test/support/redis-cluster';
import { ClusterBackends } from './cluster.fixtures';

/**
 * Three ncps processes locking on a real 3-master Redis Cluster (`--cache-redis-addrs=node1,node2,node3`, as docs/ha.md shows),
 * fetched through at once by three real Nix clients: one upstream GET per NAR for the whole cluster.
 */
describe('a cluster of 3 instances locking on a 3-master Redis Cluster, with the real Nix client', () => {
  let redis: RedisCluster;
  let backends: ClusterBackends;
  let nix: NixWorkspace;
  let upstream: FakeUpstream;
  let cacheDir: string;
  let top: string;
  let leaf: string;

  beforeAll(async () => {
    redis = await RedisCluster.start({ masters: 3 });
    nix = await NixWorkspace.create();
    const store = join(nix.dir, 'upstream-store');
    await mkdir(store, { recursive: true });
    const files = await nix.addFiles(store, { 'leaf.txt': 'leaf\n', 'big.bin': randomBytes(300_000), 'other.bin': randomBytes(200_000) });
    leaf = files[0];
    top = await nix.buildWithReferences(store, 'top', files);
    const key = await nix.generateKey('upstream.test-1');
    await nix.sign(store, key.secretPath, [top]);
    cacheDir = join(nix.dir, 'cache');
    await nix.copyToFileCache(store, cacheDir, 'zstd', [top]);
    upstream = await FakeUpstream.start({ dir: cacheDir });
    backends = await ClusterBackends.start();
    // The later --cache-redis-addrs replaces the fixture's single server.
    await backends.startInstances(3, 'redis', [
      `--cache-redis-addrs=${redis.addresses.join(',')}`,
      `--cache-upstream-url=${upstream.url}`,
      `--cache-upstream-public-key=${key.publicKey}`,
    ]);
  }, 180_000);

  afterAll(async () => {
    await backends?.dispose();
    await upstream?.stop();
    await nix?.dispose();
    await redis?.destroy();
  }, 60_000);

  it('serves the closure to three Nix clients at once, with one upstream GET per NAR', async () => {
    const instances = backends.instances;
    for (const instance of instances) {
      const health = (await (await fetch(`${instance.url}/health`)).json()) as { details: { locks: Record<string, unknown> } };
      expect(health.details.locks).toMatchObject({ status: 'up', backend: 'redis', mode: 'distributed' });
    }
    const pubkey = await (await fetch(`${instances[0].url}/pubkey`)).text();
    const scriptsBefore = await clusterScriptCalls(redis);

    const stores = await Promise.all(instances.map((instance) => nix.copyFromHttp(instance.url, pubkey, [top])));
    for (const store of stores) expect(await nix.readStoreFile(store, leaf)).toBe('leaf\n');

    const nars = (await readdir(join(cacheDir, 'nar'))).map((file) => `/nar/${file}`);
    expect(nars.length).toBe(4);
    for (const nar of nars) expect(upstream.count(nar)).toBe(1);
    // The locks were taken on the cluster, and on more than one of its masters.
    const scriptsAfter = await clusterScriptCalls(redis);
    const busy = scriptsAfter.filter((calls, i) => calls > scriptsBefore[i]);
    expect(busy.length).toBeGreaterThanOrEqual(2);
  }, 120_000);
});

/** EVALSHA/EVAL calls per node (the lock scripts). */
async function clusterScriptCalls(cluster: RedisCluster): Promise<number[]> {
  return Promise.all(
    cluster.nodes.map(async (node) => {
      const stats = await cluster.cli(node.port, 'INFO', 'commandstats');
      return [...stats.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+)/gm)].reduce((sum, match) => sum + Number(match[1]), 0);
    }),
  );
}
