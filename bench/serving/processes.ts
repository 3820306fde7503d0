/** Child processes of the serving benchmark: started pinned to a CPU, watched through /proc. */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { Agent, request as httpRequest } from 'node:http';
import { AddressInfo, createServer } from 'node:net';

export interface Child {
  child: ChildProcess;
  pid: number;
  /** The last 64 KiB of its output, for error messages. */
  logs(): string;
}

/**
 * Starts `command` through `taskset -c <cpu>` (taskset execs it, so the pid is the command's own),
 * keeping its output for error messages.
 */
export function startPinned(cpu: string, command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Child {
  const child = spawn('taskset', ['-c', cpu, command, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let output = '';
  for (const stream of [child.stdout, child.stderr]) {
    stream.setEncoding('utf8').on('data', (chunk: string) => (output = (output + chunk).slice(-65_536)));
  }
  return { child, pid: child.pid!, logs: () => output };
}

export async function stop(child: Child): Promise<void> {
  const { exitCode, signalCode } = child.child;
  if (exitCode !== null || signalCode !== null) return;
  const exited = once(child.child, 'exit');
  child.child.kill('SIGTERM');
  const timer = setTimeout(() => child.child.kill('SIGKILL'), 30_000);
  await exited;
  clearTimeout(timer);
}

/** Pins every thread of this process (and what it starts later) to `cpu`. */
export function pinSelf(cpu: string): void {
  const result = spawnSync('taskset', ['-a', '-p', '-c', cpu, String(process.pid)], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`taskset: ${result.stderr || result.error?.message}`);
}

/** A free loopback TCP port (closed again before it is returned). */
export async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

const probeAgent = new Agent({ keepAlive: false });

function answers(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = httpRequest(url, { agent: probeAgent, timeout: 1000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(true));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

/** Polls `url` until it answers with any status; throws with the child's logs when it dies or 60 s pass. */
export async function waitUntilUp(url: string, child: Child): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.child.exitCode !== null) throw new Error(`${url}: the server exited with ${child.child.exitCode}\n${child.logs()}`);
    if (await answers(url)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${url} did not answer within 60 s\n${child.logs()}`);
}

/** `pid` and its live children (nginx's worker). */
export async function withChildren(pid: number): Promise<number[]> {
  const children = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8');
  return [pid, ...children.split(' ').filter(Boolean).map(Number)];
}

/**
 * CPU seconds (user + system) used so far by `pids`, from /proc. The machine is shared, so a server's
 * rate per CPU-second it used is steadier than its rate per wall-clock second.
 */
export async function cpuSeconds(pids: number[]): Promise<number> {
  let ticks = 0;
  for (const pid of pids) {
    // utime and stime are fields 14 and 15; counting starts after the parenthesised command name (field 2).
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks / 100; // USER_HZ, 100 on every Linux that Node runs on
}

/**
 * Nanoseconds the main thread of `pid` has run, from /proc/<pid>/schedstat: exact (not in clock
 * ticks) as of the thread's last switch, so read while it waits, not while it runs. For work that
 * takes milliseconds, such as one miss.
 */
export function mainThreadCpuNs(pid: number): bigint {
  const stat = readFileSync(`/proc/${pid}/schedstat`, 'utf8');
  return BigInt(stat.slice(0, stat.indexOf(' ')));
}

/**
 * Waits until `pid` has used no CPU for `windowMs` (its clock ticks did not move), and at least that
 * long; gives up after `maxMs`. For work a server still does after its client was answered (a NAR's
 * commit to storage), so that it is not timed in the next measurement.
 */
export async function quiet(pid: number, windowMs = 100, maxMs = 10_000): Promise<void> {
  const deadline = Date.now() + maxMs;
  let before = await cpuSeconds([pid]);
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, windowMs));
    const now = await cpuSeconds([pid]);
    if (now === before || Date.now() >= deadline) return;
    before = now;
  }
}

/** VmRSS (resident now) and VmHWM (peak resident since start) of `pid`, in bytes. */
export async function memory(pid: number): Promise<{ rss: number; peak: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kib('VmRSS'), peak: kib('VmHWM') };
}
