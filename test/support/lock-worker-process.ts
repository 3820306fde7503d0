import { ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { LockWorkerResult, LockWorkerTask } from 'test/integration/locking/fixtures/lock-worker.task';

const root = join(__dirname, '..', '..');

/** A lock worker process (test/integration/locking/fixtures/lock-worker.ts) and what it reports. */
export class LockWorkerProcess {
  private output = '';
  private errors = '';
  private readonly exited: Promise<number | null>;

  private constructor(readonly child: ChildProcess) {
    child.stdout?.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (this.errors += chunk.toString()));
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  static start(task: LockWorkerTask, env: Record<string, string> = {}): LockWorkerProcess {
    const child = spawn(
      process.execPath,
      ['-r', join(root, 'test/support/lock-child-register.js'), join(root, 'test/integration/locking/fixtures/lock-worker.ts')],
      { cwd: root, env: { ...process.env, ...env, LOCK_WORKER: JSON.stringify(task) }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    return new LockWorkerProcess(child);
  }

  /** Resolves when the worker printed `line`; fails if it exits first or `timeoutMs` passes. */
  async waitFor(line: string, timeoutMs = 20_000): Promise<void> {
    const started = Date.now();
    while (!this.output.split('\n').includes(line)) {
      if (this.child.exitCode !== null) throw new Error(`worker exited with ${this.child.exitCode} before "${line}":\n${this.errors}`);
      if (Date.now() - started > timeoutMs) throw new Error(`worker did not print "${line}" within ${timeoutMs} ms:\n${this.errors}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  async result(): Promise<LockWorkerResult> {
    const code = await this.exited;
    const line = this.output.split('\n').find((l) => l.startsWith('RESULT '));
    if (code !== 0 || !line) throw new Error(`worker failed (exit ${code}):\n${this.errors}`);
    return JSON.parse(line.slice('RESULT '.length)) as LockWorkerResult;
  }

  /** kill -9: no finally, no release, the kernel closes its sockets. */
  async kill(): Promise<void> {
    if (this.child.exitCode !== null) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }
}
