import { ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';

const root = join(__dirname, '..', '..', '..');

/** A JSON log line of an instance (pino): `time` in epoch ms, `msg`, and the structured fields. */
export type LogLine = { time: number; msg: string } & Record<string, unknown>;

/**
 * `ncps serve` as a separate OS process, run from the TypeScript sources (compiled in memory by SWC,
 * as the lock tests' workers are), so the test needs no build. It listens on a free port, which it
 * reports in its "ncps is serving" log line.
 */
export class NcpsInstance {
  private readonly lines: LogLine[] = [];
  private readonly output: string[] = [];
  private readonly exited: Promise<unknown>;
  url = '';

  private constructor(
    readonly name: string,
    private readonly child: ChildProcess,
  ) {
    let partial = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      const text = partial + chunk;
      const complete = text.split('\n');
      partial = complete.pop() ?? '';
      for (const line of complete) this.record(line);
    });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => this.output.push(chunk));
    this.exited = once(child, 'exit');
  }

  static async start(name: string, flags: string[]): Promise<NcpsInstance> {
    const child = spawn(
      process.execPath,
      ['-r', join(root, 'test/support/lock-child-register.js'), join(root, 'src/main.ts'), 'serve', '--server-addr=127.0.0.1:0', ...flags],
      { cwd: root, env: { PATH: process.env.PATH, HOME: process.env.HOME }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const instance = new NcpsInstance(name, child);
    await instance.serving();
    return instance;
  }

  /** Log lines with this message, in order. */
  logged(msg: string): LogLine[] {
    return this.lines.filter((line) => line.msg === msg);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(timer);
  }

  private record(line: string): void {
    this.output.push(line);
    if (!line.startsWith('{')) return;
    const parsed = JSON.parse(line) as Record<string, unknown>;
    // pino writes `time` as epoch ms or as an ISO string, depending on the logger's options.
    this.lines.push({ ...parsed, time: new Date(parsed.time as string | number).getTime() } as LogLine);
  }

  private async serving(): Promise<void> {
    const deadline = Date.now() + 30_000;
    while (!this.url) {
      if (this.child.exitCode !== null) throw new Error(`${this.name} exited during start:\n${this.output.slice(-20).join('\n')}`);
      if (Date.now() > deadline) throw new Error(`${this.name} did not start within 30 s:\n${this.output.slice(-20).join('\n')}`);
      const [line] = this.logged('ncps is serving');
      if (line) this.url = String(line.url);
      else await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}
