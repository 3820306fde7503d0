import { ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { join } from 'node:path';

/** NCPS_TEST_MAIN: another build's main.js (a private build while the shared dist is in use). */
const MAIN = process.env.NCPS_TEST_MAIN ?? join(__dirname, '../../dist/src/main.js');

/** A free loopback TCP port (closed again before it is returned). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

export interface NcpsProcessOptions {
  /** Listen on every interface (`--server-addr=:<port>`) instead of 127.0.0.1. */
  everyInterface?: boolean;
  /** Pass `--server-advertise-url=<url>` (the default); false leaves the advertise URL to ncps's default. */
  advertise?: boolean;
}

/**
 * The built ncps (`npm run build` first; `npm test` does) running as a separate OS process, for
 * tests that kill, restart or signal real instances.
 */
export class NcpsProcess {
  readonly logs: string[] = [];
  exit?: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private child?: ChildProcess;

  private constructor(
    readonly port: number,
    private readonly flags: string[],
    private readonly env: NodeJS.ProcessEnv,
    private readonly options: NcpsProcessOptions,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts `ncps serve` with the flags (without --server-addr, which is chosen here) and waits until it answers. */
  static async start(flags: string[], env: NodeJS.ProcessEnv = {}, options: NcpsProcessOptions = {}): Promise<NcpsProcess> {
    const proc = new NcpsProcess(await freePort(), flags, env, options);
    await proc.restart();
    return proc;
  }

  async restart(): Promise<void> {
    const { everyInterface = false, advertise = true } = this.options;
    const args = [
      MAIN,
      'serve',
      `--server-addr=${everyInterface ? '' : '127.0.0.1'}:${this.port}`,
      ...(advertise ? [`--server-advertise-url=${this.url}`] : []),
      ...this.flags,
    ];
    const child = spawn(process.execPath, args, {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: 'info', ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    for (const stream of [child.stdout, child.stderr]) {
      stream.setEncoding('utf8');
      let partial = '';
      stream.on('data', (chunk: string) => {
        const lines = (partial + chunk).split('\n');
        partial = lines.pop() ?? '';
        this.logs.push(...lines);
      });
    }
    this.exit = once(child, 'exit').then(([code, signal]) => ({ code, signal }));
    await this.waitUntilReady(child);
  }

  /** Sends a signal; resolves with how the process ended (SIGKILL: kill -9). */
  async kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    this.child?.kill(signal);
    return this.exit!;
  }

  async stop(): Promise<void> {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) await this.kill('SIGKILL');
  }

  /** Log lines (parsed JSON) whose message is `msg`. */
  logged(msg: string): Array<Record<string, unknown>> {
    return this.logs
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.msg === msg);
  }

  private async waitUntilReady(child: ChildProcess): Promise<void> {
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) {
        throw new Error(`ncps exited with ${child.exitCode} during start:\n${this.logs.slice(-20).join('\n')}`);
      }
      const ok = await fetch(`${this.url}/healthz`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`ncps did not answer within 30 s:\n${this.logs.slice(-20).join('\n')}`);
  }
}
