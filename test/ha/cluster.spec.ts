import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { NcpsProcess } from 'test/support/ncps-process';
import { ClusterBackends, fetchHashed, publishNar } from './cluster.fixtures';

const MiB = 1024 * 1024;

interface ClusterDetail {
  status: string;
  instance: string;
  advertiseUrl: string;
  advertiseCheck: string;
  reason?: string;
}

/** An instance's /health `cluster` detail (loopback gets details) once its advertise check has an outcome. */
async function clusterDetail(instance: NcpsProcess): Promise<ClusterDetail> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const body = (await (await fetch(`${instance.url}/health`)).json()) as { details: { cluster: ClusterDetail } };
    if (body.details.cluster.advertiseCheck !== 'pending' || Date.now() > deadline) return body.details.cluster;
    await new Promise((r) => setTimeout(r, 200));
  }
}

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
    if (process.env.NCPS_HA_DEBUG)
      for (const i of cluster.instances)
        console.log(
          i.logs
            .filter((l) => /warn|error|"level":[45]/.test(l))
            .slice(-10)
            .join('\n'),
        );
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

    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => fetchHashed(`${cluster.instances[i % 3].url}${nar.ourPath}`)));
    for (const r of results) expect(r).toMatchObject({ status: 200, sha256: nar.sha256, bytes: nar.size });
    expect(cluster.upstream.count(nar.upstreamPath)).toBe(1);
  }, 180_000);

  it('streams a download running on another instance: the first byte arrives while the upstream is still sending', async () => {
    const nar = publishNar(cluster.upstream, cluster.key.secretKey, 4 * MiB, 'held');
    // The upstream sends half the NAR, then holds the rest until released: until then the download on A
    // cannot finish, so a client of B that gets a byte got it streamed from A.
    let held = true;
    let open!: () => void;
    const released = new Promise<void>((r) => (open = r));
    const release = () => {
      held = false;
      open();
    };
    cluster.upstream.route(nar.upstreamPath, async (_req, res) => {
      res.writeHead(200, { 'content-length': String(nar.size) });
      res.write(nar.body.subarray(0, nar.size / 2));
      await released;
      res.end(nar.body.subarray(nar.size / 2));
    });
    // Breaks the deadlock, should B wait for the whole download: the test then fails, rather than hangs.
    const safety = setTimeout(() => release(), 20_000);
    const [a, b] = cluster.instances;
    try {
      await fetch(`${a.url}/${nar.hash}.narinfo`); // A starts fetching the NAR in the background
      while (cluster.upstream.count(nar.upstreamPath) === 0) await new Promise((r) => setTimeout(r, 20));

      const started = Date.now();
      const res = await fetch(`${b.url}${nar.ourPath}`);
      const chunks = (res.body as unknown as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
      const first = await chunks.next();
      const whileHeld = held;
      const ttfbMs = Date.now() - started;
      release();
      const hash = createHash('sha256');
      let bytes = 0;
      for (let chunk = first; !chunk.done; chunk = await chunks.next()) {
        hash.update(chunk.value);
        bytes += chunk.value.length;
      }
      process.stdout.write(`HA time to first byte from another instance (${lockBackend}): ${ttfbMs} ms\n`);
      expect(whileHeld).toBe(true);
      expect({ status: res.status, bytes, sha256: hash.digest('hex') }).toEqual({ status: 200, bytes: nar.size, sha256: nar.sha256 });
      expect(cluster.upstream.count(nar.upstreamPath)).toBe(1);
      expect(b.logged('streaming a download in progress on another instance')).not.toHaveLength(0);
    } finally {
      clearTimeout(safety);
      release();
    }
  }, 60_000);

  it('each instance advertises its own address (same --cache-hostname, no --server-advertise-url), and checks it', async () => {
    const reports = await Promise.all(cluster.instances.map((i) => clusterDetail(i)));
    for (const [n, report] of reports.entries()) {
      expect(report).toMatchObject({ advertiseCheck: 'ok', advertiseUrl: `http://${hostname()}:${cluster.instances[n].port}` });
    }
    expect(new Set(reports.map((r) => r.instance)).size).toBe(3);
  });

  it('reports an advertise URL that does not reach the instance, in its log and /health details', async () => {
    const [a] = cluster.instances;
    const misled = await NcpsProcess.start(cluster.flags(lockBackend, [`--server-advertise-url=${a.url}`]));
    try {
      const report = await clusterDetail(misled);
      expect(report).toMatchObject({
        status: 'up',
        advertiseUrl: a.url,
        advertiseCheck: 'failed',
        reason: expect.stringMatching(/^another ncps instance answered/),
      });
      expect(misled.logged('advertise URL does not reach this instance')).toEqual([
        expect.objectContaining({ level: 'error', advertise_url: a.url, fix: expect.stringContaining('--server-advertise-url') }),
      ]);
      expect((await fetch(`${misled.url}/health`)).status).toBe(200); // serving works: not a reason to be dropped
    } finally {
      await misled.stop();
    }
  }, 60_000);
});
