import { LoadBalancer } from 'test/support/load-balancer';
import { until } from 'test/support/wait';
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
    const nar = publishNar(cluster.upstream, cluster.key.secretKey, 16 * MiB, 'killed');
    // The upstream sends the first MiB, then holds the rest: A's download cannot end before the kill,
    // so B's client, once it has a byte, is a follower of A's download (no timing involved).
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    cluster.upstream.route(nar.upstreamPath, async (_req, res) => {
      res.writeHead(200, { 'content-length': String(nar.size) });
      res.write(nar.body.subarray(0, MiB));
      await released;
      res.end(nar.body.subarray(MiB));
    });
    const [a, b] = cluster.instances;
    try {
      await fetch(`${a.url}/${nar.hash}.narinfo`); // a starts downloading
      await until('the upstream was asked for the NAR', () => cluster.upstream.count(nar.upstreamPath) > 0);

      const res = await fetch(`${b.url}${nar.ourPath}`);
      const chunks = (res.body as unknown as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
      const first = await chunks.next();
      expect(res.status).toBe(200);
      expect(first.done).toBe(false);
      // B's log line may come after the first bytes: wait for it rather than read it at once.
      await until('B streams from A', () => b.logged('streaming a download in progress on another instance').length > 0);
      const following = (async () => {
        let bytes = first.done ? 0 : first.value.length;
        for (let chunk = await chunks.next(); !chunk.done; chunk = await chunks.next()) bytes += chunk.value.length;
        return bytes;
      })().then(
        (bytes) => ({ bytes }),
        () => 'aborted' as const,
      );

      await a.kill('SIGKILL');
      // Never a 200 with a short or wrong body: the follower's transfer breaks.
      expect(await following).toBe('aborted');
    } finally {
      release();
    }

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
