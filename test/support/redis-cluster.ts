import { ChildProcess, execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { killRedisServer, spawnRedisServer } from './lock-redis-server';

const run = promisify(execFile);

/** Whether nobody listens on `port` of 127.0.0.1 right now. */
function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A port whose cluster bus port (+10000) is free too, below the ephemeral range so both stay free. */
async function freeClusterPort(taken: Set<number>): Promise<number> {
  for (let tries = 0; tries < 200; tries++) {
    const port = 20_000 + Math.floor(Math.random() * 10_000);
    if (taken.has(port)) continue;
    if ((await isFree(port)) && (await isFree(port + 10_000))) {
      taken.add(port);
      return port;
    }
  }
  throw new Error('no free port pair for a Redis Cluster node');
}

export interface RedisClusterOptions {
  /** Masters (3 at least). */
  masters?: number;
  /** Replicas per master (`--cluster-replicas`). */
  replicas?: number;
  /** How long a node may be unreachable before the others mark it failed (and a replica takes over). */
  nodeTimeoutMs?: number;
  /** TLS only (`tls-cluster yes`): the nodes' certificate, key and CA. */
  tls?: { certFile: string; keyFile: string; caFile: string };
  /** An ACL user the nodes accept, `default` disabled; redis-cli and replication use it too. */
  user?: { name: string; password: string };
}

/** One node: its own directory (nodes.conf survives a restart, so a restarted node rejoins). */
class ClusterNode {
  private process: ChildProcess | undefined;

  constructor(
    readonly port: number,
    private readonly dir: string,
    private readonly config: string[],
  ) {}

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.process !== undefined && this.process.exitCode === null;
  }

  async start(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    const file = join(this.dir, 'redis.conf');
    writeFileSync(file, [...this.config, `dir ${this.dir}`].join('\n'));
    this.process = await spawnRedisServer(file, `redis-server :${this.port}`, 10_000);
  }

  /** SIGKILL: the node vanishes, as a crashed machine would. */
  async kill(): Promise<void> {
    const child = this.process;
    this.process = undefined;
    await killRedisServer(child);
  }
}

const everyCluster = new Set<RedisCluster>();
// Never leave redis-servers behind, even when a test run dies before its afterAll.
process.once('exit', () => {
  for (const cluster of everyCluster) cluster.killNow();
});

/**
 * A real Redis Cluster of the test's own: `masters × (1 + replicas)` redis-servers on free ports in a
 * temporary directory, created with `redis-cli --cluster create`. `destroy()` kills every node and
 * removes the directory; call it in afterAll.
 */
export class RedisCluster {
  readonly nodes: ClusterNode[] = [];
  private readonly dir = mkdtempSync(join(tmpdir(), 'ncps-redis-cluster-'));

  private constructor(private readonly options: RedisClusterOptions) {
    everyCluster.add(this);
  }

  static async start(options: RedisClusterOptions = {}): Promise<RedisCluster> {
    const cluster = new RedisCluster(options);
    try {
      await cluster.create();
    } catch (error) {
      await cluster.destroy();
      throw error;
    }
    return cluster;
  }

  /** The seed addresses, as `--cache-redis-addrs` takes them. */
  get addresses(): string[] {
    return this.nodes.map((node) => node.address);
  }

  /** redis-cli against a node, with the cluster's TLS and user. */
  async cli(port: number, ...args: string[]): Promise<string> {
    const { stdout } = await run('redis-cli', [...this.cliConnection(), '-p', String(port), ...args], { timeout: 10_000 });
    return stdout;
  }

  /** The node serving `slot` as master now. */
  async masterOf(slot: number): Promise<ClusterNode> {
    for (const node of this.nodes.filter((n) => n.running)) {
      const text = await this.cli(node.port, 'CLUSTER', 'NODES').catch(() => '');
      for (const line of text.split('\n')) {
        const [, addr, flags, , , , , state, ...ranges] = line.split(' ');
        if (!flags?.includes('master') || flags.includes('fail') || state !== 'connected') continue;
        const owns = ranges.some((range) => {
          const [from, to = from] = range.split('-').map(Number);
          return slot >= from && slot <= to;
        });
        if (owns) {
          const port = Number(addr.split('@')[0].split(':').pop());
          const found = this.nodes.find((n) => n.port === port);
          if (found) return found;
        }
      }
    }
    throw new Error(`no master serves slot ${slot}`);
  }

  /** Resolves when every running node reports `cluster_state:ok` (or `fail`, with `state`). */
  async waitForState(state: 'ok' | 'fail', timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const states = await Promise.all(
        this.nodes.filter((node) => node.running).map((node) => this.cli(node.port, 'CLUSTER', 'INFO').catch((e: Error) => e.message)),
      );
      if (states.every((text) => text.includes(`cluster_state:${state}`))) return;
      if (Date.now() > deadline) throw new Error(`cluster did not reach state ${state}:\n${states.join('\n')}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  async destroy(): Promise<void> {
    everyCluster.delete(this);
    await Promise.all(this.nodes.map((node) => node.kill()));
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Synchronous last resort (process exit). */
  killNow(): void {
    for (const node of this.nodes) void node.kill();
  }

  private cliConnection(): string[] {
    const { tls, user } = this.options;
    return [
      '-h',
      '127.0.0.1',
      ...(tls ? ['--tls', '--cacert', tls.caFile] : []),
      ...(user ? ['--user', user.name, '--pass', user.password, '--no-auth-warning'] : []),
    ];
  }

  private async create(): Promise<void> {
    const { masters = 3, replicas = 0, nodeTimeoutMs = 2000, tls, user } = this.options;
    const taken = new Set<number>();
    for (let i = 0; i < masters * (1 + replicas); i++) {
      const port = await freeClusterPort(taken);
      const listen = tls
        ? [
            'port 0',
            `tls-port ${port}`,
            `tls-cert-file ${tls.certFile}`,
            `tls-key-file ${tls.keyFile}`,
            `tls-ca-cert-file ${tls.caFile}`,
            'tls-auth-clients no',
            'tls-cluster yes',
            'tls-replication yes',
          ]
        : [`port ${port}`];
      const acl = user
        ? [
            'user default off',
            `user ${user.name} on >${user.password} ~* &* +@all`,
            `masteruser ${user.name}`,
            `masterauth ${user.password}`,
          ]
        : [];
      this.nodes.push(
        new ClusterNode(port, join(this.dir, String(port)), [
          ...listen,
          'bind 127.0.0.1',
          'cluster-enabled yes',
          'cluster-config-file nodes.conf',
          `cluster-node-timeout ${nodeTimeoutMs}`,
          'save ""',
          'appendonly no',
          ...acl,
        ]),
      );
    }
    await Promise.all(this.nodes.map((node) => node.start()));
    await run(
      'redis-cli',
      [...this.cliConnection(), '--cluster', 'create', ...this.addresses, '--cluster-replicas', String(replicas), '--cluster-yes'],
      { timeout: 30_000 },
    );
    await this.waitForState('ok');
    if (replicas > 0) await this.waitForReplicas(masters * replicas);
  }

  /** Replicas count only once they have synced with their master. */
  private async waitForReplicas(count: number): Promise<void> {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const roles = await Promise.all(this.nodes.map((node) => this.cli(node.port, 'INFO', 'replication').catch(() => '')));
      if (roles.filter((text) => text.includes('role:slave') && text.includes('master_link_status:up')).length >= count) return;
      if (Date.now() > deadline) throw new Error('replicas did not sync');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

export type { ClusterNode };
