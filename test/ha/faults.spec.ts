import { LoadBalancer } from 'test/support/load-balancer';
import { ClusterBackends, fetchHashed, publishNar } from './cluster.fixtures';

const MiB = 1024 * 1024;

describe.each(['redis', 'postgres'] as const)('faults in a cluster with %s locks', (lockBackend) => {
  let cluster: ClusterBackends;

  beforeAll(async () => {
    cluster = await ClusterBackends.start();
    // The default download-lock TTL (5m): a killed holder's Redis lease still runs out within 15 s.
    await cluster.startInstances(3, lockBackend);
  }, 90_000);

  afterAll(() => cluster?.dispose(), 60_000);

  it('kill -9 of the downloading instance: its followers see a broken transfer, a retry on a survivor succeeds', async () => {
    const nar = publishNar(cluster.upstream, cluster.key.secretKey, 16 * MiB, 'killed', {
      throttle: { chunkSize: 256 * 1024, intervalMs: 100 },
    });
    const [a, b] = cluster.instances;
    await fetch(`${a.url}/${nar.hash}.narinfo`); // a starts downloading
    await new Promise((r) => setTimeout(r, 300));
    const following = fetchHashed(`${b.url}${nar.ourPath}`).then(
      (r) => r,
      () => 'aborted' as const,
    );
    await new Promise((r) => setTimeout(r, 1000));
    await a.kill('SIGKILL');
    const outcome = await following;
    // Never a 200 with a short or wrong body.
    if (outcome !== 'aborted') expect(outcome).not.toMatchObject({ status: 200, bytes: nar.size - 1 });
    if (outcome !== 'aborted' && outcome.status === 200) expect(outcome.sha256).toBe(nar.sha256);

    cluster.upstream.route(nar.upstreamPath, { body: nar.body }); // the upstream is fast again
    const retried = Date.now();
    const retry = await fetchHashed(`${b.url}${nar.ourPath}`);
    expect(retry).toMatchObject({ status: 200, sha256: nar.sha256, bytes: nar.size });
    // PostgreSQL frees the lock with the session; Redis when the lease (min(TTL, 15 s)) runs out, seen
    // by the next poll (at most 2 × --cache-lock-retry-max-delay later).
    const takeoverMs = Date.now() - retried;
    process.stdout.write(`takeover after kill -9 (${lockBackend}): the retry was served in ${takeoverMs} ms\n`);
    expect(takeoverMs).toBeLessThan(lockBackend === 'postgres' ? 5_000 : 25_000);
    await a.restart();
  }, 90_000);

  it('a rolling restart under continuous load fails no request', async () => {
    const nar = publishNar(cluster.upstream, cluster.key.secretKey, 2 * MiB, 'rolling');
    const lb = await LoadBalancer.start(() => cluster.instances.map((i) => i.url));
    await fetchHashed(`${lb.url}${nar.ourPath}`).catch(() => undefined);
    await fetch(`${lb.url}/${nar.hash}.narinfo`);
    let running = true;
    const failures: string[] = [];
    let requests = 0;
    const client = async () => {
      while (running) {
        const paths = [`/${nar.hash}.narinfo`, nar.ourPath, '/nix-cache-info', '/pubkey'];
        for (const path of paths) {
          requests += 1;
          const r = await fetchHashed(`${lb.url}${path}`).catch((e: Error) => ({ status: 0, error: `${e.message}: ${String(e.cause)}` }));
          if (r.status !== 200) failures.push(`${path}: ${JSON.stringify(r)}`);
          else if (path === nar.ourPath && 'sha256' in r && r.sha256 !== nar.sha256) failures.push(`${path}: wrong bytes`);
        }
      }
    };
    const clients = Array.from({ length: 4 }, client);
    try {
      for (const instance of cluster.instances) {
        await new Promise((r) => setTimeout(r, 500));
        const exit = await instance.kill('SIGTERM');
        expect(exit).toEqual({ code: 0, signal: null });
        await instance.restart();
      }
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      running = false;
      await Promise.all(clients);
      await lb.stop();
    }
    process.stdout.write(
      `rolling restart (${lockBackend}): ${requests} requests, ${failures.length} failed, ${lb.retries} retried by the balancer\n`,
    );
    expect(failures).toEqual([]);
    expect(requests).toBeGreaterThan(50);
  }, 120_000);
});
