import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface PrivateRedisOptions {
  /** Lines added to the configuration file (users, ...). */
  config?: string[];
  /** Serve TLS only, with this certificate and key. */
  tls?: { certFile: string; keyFile: string };
}

/** A redis-server of the test's own, on a free port — never the shared one, since tests stop it. */
export class PrivateRedis {
  private process: ChildProcess | undefined;
  private readonly dir = mkdtempSync(join(tmpdir(), 'ncps-redis-'));

  private constructor(
    readonly port: number,
    private readonly options: PrivateRedisOptions,
  ) {}

  static async start(options: PrivateRedisOptions = {}): Promise<PrivateRedis> {
    const server = new PrivateRedis(await freePort(), options);
    await server.start();
    return server;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Starts the server (again, after stop(), on the same port). */
  async start(): Promise<void> {
    const { tls, config = [] } = this.options;
    const listen = tls
      ? ['port 0', `tls-port ${this.port}`, `tls-cert-file ${tls.certFile}`, `tls-key-file ${tls.keyFile}`, 'tls-auth-clients no']
      : [`port ${this.port}`];
    const file = join(this.dir, 'redis.conf');
    writeFileSync(file, [...listen, 'bind 127.0.0.1', 'save ""', 'appendonly no', `dir ${this.dir}`, ...config].join('\n'));
    this.process = await spawnRedisServer(file, 'redis-server', 5000);
  }

  /** Kills the server at once (SIGKILL): clients see their connections drop. */
  async stop(): Promise<void> {
    const child = this.process;
    this.process = undefined;
    await killRedisServer(child);
  }

  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * Starts `redis-server` on a config file and resolves once it accepts connections; rejects (with its
 * output) when it exits first or is not ready within `timeoutMs`.
 */
export async function spawnRedisServer(configFile: string, label: string, timeoutMs: number): Promise<ChildProcess> {
  const child = spawn('/usr/bin/redis-server', [configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${label} did not start:\n${output}`));
    }, timeoutMs);
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${label} exited with ${code}:\n${output}`));
    });
  });
  return child;
}

/** SIGKILL, waiting for the exit: clients see their connections drop, as with a crashed machine. */
export async function killRedisServer(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}
