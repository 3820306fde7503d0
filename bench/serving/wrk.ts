/** wrk over a list of paths, for the narinfo hits (small bodies: its user-space copy costs nothing there). */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { cpuSeconds } from './processes';

export interface WrkResult {
  requests: number;
  seconds: number;
  /** Of the server, during the run. */
  cpuSeconds: number;
  p50Ms: number;
  p99Ms: number;
}

export interface WrkOptions {
  dir: string;
  url: string;
  paths: string[];
  connections: number;
  seconds: number;
  serverPids: number[];
  cpu: string;
}

/**
 * Runs wrk (one thread, `connections` keep-alive connections) over `paths` in turn, and reads its
 * summary from a Lua `done` hook; any non-2xx answer or socket error fails the benchmark.
 */
export async function wrk(o: WrkOptions): Promise<WrkResult> {
  const script = join(o.dir, 'wrk.lua');
  await writeFile(
    script,
    `local paths = {${o.paths.map((p) => JSON.stringify(p)).join(',')}}
local i = 0
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
done = function(s, latency)
  local e = s.errors
  io.write(string.format('\\nRESULT {"requests":%d,"us":%d,"errors":%d,"status":%d,"p50":%d,"p99":%d}\\n',
    s.requests, s.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)))
end
`,
  );
  const cpuBefore = await cpuSeconds(o.serverPids);
  const { stdout } = await promisify(execFile)('taskset', [
    '-c',
    o.cpu,
    'wrk',
    '-t1',
    `-c${o.connections}`,
    `-d${o.seconds}s`,
    '--timeout',
    '30s',
    '-s',
    script,
    o.url,
  ]);
  const cpu = (await cpuSeconds(o.serverPids)) - cpuBefore;
  const line = /^RESULT (.*)$/m.exec(stdout)?.[1];
  if (!line) throw new Error(`no summary from wrk:\n${stdout}`);
  const r = JSON.parse(line) as { requests: number; us: number; errors: number; status: number; p50: number; p99: number };
  if (r.errors > 0 || r.status > 0) throw new Error(`wrk ${o.url}: ${r.errors} socket errors, ${r.status} non-2xx answers`);
  return { requests: r.requests, seconds: r.us / 1e6, cpuSeconds: cpu, p50Ms: r.p50 / 1000, p99Ms: r.p99 / 1000 };
}
