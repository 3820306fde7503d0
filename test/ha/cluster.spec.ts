import { ClusterBackends, fetchHashed, publishNar } from './cluster.fixtures';

const MiB = 1024 * 1024;

/**
 * Several ncps processes sharing PostgreSQL, S3 and a lock backend act as one cache: one upstream
 * download per NAR cluster-wide, bytes streamed to clients of every instance as they arrive.
 */
describe.each(['redis', 'postgres'] as const)('a cluster of 3 instances with %s locks', (lockBackend) => {
  let cluster: ClusterBackends;

  beforeAll(async () => {
    cluster = await ClusterBackends.start();
    await cluster.startInstances(3, lockBackend);
  }, 90_000);

  afterAll(async () => {
    if (process.env.NCPS_HA_DEBUG) for (const i of cluster.instances) console.log(i.logs.filter((l) => /warn|error|"level":[45]/.test(l)).slice(-10).join('\n'));
    await cluster?.dispose();
  }, 60_000);

  it('agrees on one signing key', async () => {
    const keys = await Promise.all(cluster.instances.map(async (i) => (await fetch(`${i.url}/pubkey`)).text()));
    expect(new Set(keys).size).toBe(1);
    expect(keys[0]).toMatch(/^ha-test-1:/);
  });

  it('50 concurrent requests for one uncached 64 MiB NAR cause exactly one upstream GET, and every body is correct', async () => {
    const nar = publishNar(cluster.upstream, cluster.key.secretKey, 64 * MiB, 'big', {
      throttle: { chunkSize: MiB, intervalMs: 25 },
    });
    const [a] = cluster.instances;
    expect((await fetch(`${a.url}/${nar.hash}.narinfo`)).status).toBe(200);

    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => fetchHashed(`${cluster.instances[i % 3].url}${nar.ourPath}`)),
    );
    for (const r of results) expect(r).toMatchObject({ status: 200, sha256: nar.sha256, bytes: nar.size });
    expect(cluster.upstream.count(nar.upstreamPath)).toBe(1);
  }, 180_000);

  it('streams a slow download on another instance to a client within a second', async () => {
    // ~10 s for the whole NAR.
    const nar = publishNar(cluster.upstream, cluster.key.secretKey, 16 * MiB, 'slow', {
      throttle: { chunkSize: 256 * 1024, intervalMs: 150 },
    });
    const [a, b] = cluster.instances;
    await fetch(`${a.url}/${nar.hash}.narinfo`); // a starts fetching the NAR in the background
    await new Promise((r) => setTimeout(r, 300));
    const started = Date.now();
    const result = await fetchHashed(`${b.url}${nar.ourPath}`);
    expect(result).toMatchObject({ status: 200, sha256: nar.sha256 });
    expect(Date.now() - started).toBeGreaterThan(5_000); // it really was slow
    process.stdout.write(`HA time to first byte from another instance (${lockBackend}): ${result.ttfbMs} ms\n`);
    expect(result.ttfbMs).toBeLessThan(1_000);
    expect(cluster.upstream.count(nar.upstreamPath)).toBe(1);
  }, 60_000);
});
