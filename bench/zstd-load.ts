/**
 * zstd under load (issue 11): while 16 clients download a 64 MiB uncompressed NAR with
 * `Accept-Encoding: zstd` at once, how fast does `/healthz` keep answering? Run by hand after a build:
 *
 *   node dist/bench/zstd-load.js
 *
 * Needs curl on PATH (the 16 downloads are curl processes, so the clients' work is not counted in
 * this process's timings). ncps runs as the built `ncps serve` with its embedded defaults on
 * 127.0.0.1, in a temporary directory removed at the end; the NAR is PUT into it first. Set
 * NCPS_BENCH_BEFORE to the main.js of another build (e.g. one of the previous commit) to measure it
 * in a second column under the same load.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { Agent, request as httpRequest } from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { freePort } from './serving/processes';
import { formatPublicKey, generateKeyPair, nix32Encode } from 'src/nix';

const MAIN = join(__dirname, '../src/main.js');
const MiB = 1024 * 1024;
const NAR_SIZE = 64 * MiB;
const CLIENTS = 16;
const HEALTHZ_EVERY_MS = 10;
const IDLE_SECONDS = 3;

const agent = new Agent({ keepAlive: true, maxSockets: 1 });

function request(method: string, url: string, body?: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, agent, timeout: 30_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: no answer within 30 s`)));
    req.end(body);
  });
}

/** Half random, half runs of one byte, in 64 KiB blocks: zstd has real work and a real gain. */
function makeNar(): Buffer {
  const block = 64 * 1024;
  return Buffer.concat(Array.from({ length: NAR_SIZE / block }, (_, i) => (i % 2 ? randomBytes(block) : Buffer.alloc(block, i & 0xff))));
}

interface Latencies {
  p50: number;
  p99: number;
  max: number;
  count: number;
}

function summarise(samples: number[]): Latencies {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return { p50: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1], count: sorted.length };
}

/** GETs /healthz back to back (one every HEALTHZ_EVERY_MS at most) until `until` settles; one latency per request. */
async function pollHealthz(base: string, until: Promise<unknown>): Promise<number[]> {
  let done = false;
  const stop = () => (done = true);
  until.then(stop, stop); // its failure is the caller's to report
  const samples: number[] = [];
  while (!done) {
    const started = performance.now();
    const status = await request('GET', `${base}/healthz`);
    const took = performance.now() - started;
    if (status !== 200) throw new Error(`/healthz answered ${status}`);
    samples.push(took);
    await new Promise((r) => setTimeout(r, Math.max(0, HEALTHZ_EVERY_MS - took)));
  }
  return samples;
}

interface Download {
  encoding: string;
  bytes: number;
  seconds: number;
}

/** One curl download of `url` with Accept-Encoding: zstd, body discarded. */
function curlDownload(url: string): Promise<Download> {
  return new Promise((resolve, reject) => {
    const child = spawn('curl', [
      '-sS',
      '--max-time',
      '120',
      '-H',
      'Accept-Encoding: zstd',
      '-o',
      '/dev/null',
      '-D',
      '-',
      '-w',
      'STATS %{size_download} %{time_total}\n',
      url,
    ]);
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.on('error', reject);
    child.on('exit', (code) => {
      const stats = /STATS (\d+) ([\d.]+)/.exec(out);
      if (code !== 0 || !stats) return reject(new Error(`curl exited with ${code}: ${out}`));
      const encoding = /^content-encoding:\s*(\S+)/im.exec(out)?.[1] ?? 'identity';
      resolve({ encoding, bytes: Number(stats[1]), seconds: Number(stats[2]) });
    });
  });
}

interface Result {
  idle: Latencies;
  loaded: Latencies;
  zstdResponses: number;
  identityResponses: number;
  loadSeconds: number;
  slowestDownload: number;
}

async function measure(main: string, nar: Buffer): Promise<Result> {
  const dir = await mkdtemp(join(tmpdir(), 'ncps-bench-zstd-'));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(
    process.execPath,
    [
      main,
      'serve',
      '--server-addr',
      `127.0.0.1:${port}`,
      '--cache-data-dir',
      dir,
      '--cache-allow-put-verb',
      '--cache-hostname',
      'bench',
      '--cache-upstream-url',
      'http://127.0.0.1:9', // nothing listens: no upstream traffic
      '--cache-upstream-public-key',
      formatPublicKey(generateKeyPair('bench-upstream-1').publicKey),
      '--log-level',
      'warn',
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  try {
    const deadline = Date.now() + 30_000;
    while (
      !(await request('GET', `${base}/healthz`).then(
        (s) => s === 200,
        () => false,
      ))
    ) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`${main} did not start`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const narUrl = `${base}/nar/${nix32Encode(createHash('sha256').update(nar).digest())}.nar`;
    const put = await request('PUT', narUrl, nar);
    if (put !== 204) throw new Error(`PUT answered ${put}`);
    await curlDownload(narUrl); // warm-up: first zstd stream (starts the encoder threads)

    const idle = await pollHealthz(base, new Promise((r) => setTimeout(r, IDLE_SECONDS * 1000)));
    const started = performance.now();
    const downloads = Promise.all(Array.from({ length: CLIENTS }, () => curlDownload(narUrl)));
    const loaded = await pollHealthz(base, downloads);
    const results = await downloads;
    return {
      idle: summarise(idle),
      loaded: summarise(loaded),
      zstdResponses: results.filter((r) => r.encoding === 'zstd').length,
      identityResponses: results.filter((r) => r.encoding !== 'zstd').length,
      loadSeconds: (performance.now() - started) / 1000,
      slowestDownload: Math.max(...results.map((r) => r.seconds)),
    };
  } finally {
    child.kill('SIGTERM');
    if (child.exitCode === null) await once(child, 'exit');
    await rm(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const nar = makeNar();
  const variants: [string, string][] = [['this build', MAIN]];
  if (process.env.NCPS_BENCH_BEFORE) variants.unshift(['before', process.env.NCPS_BENCH_BEFORE]);
  const results: [string, Result][] = [];
  for (const [name, main] of variants) results.push([name, await measure(main, nar)]);
  agent.destroy();

  const ms = (v: number) => `${v.toFixed(1)} ms`;
  const rows: [string, (r: Result) => string][] = [
    ['/healthz idle: p50 / p99 / max', (r) => `${ms(r.idle.p50)} / ${ms(r.idle.p99)} / ${ms(r.idle.max)}`],
    [
      `/healthz during ${CLIENTS} zstd downloads: p50 / p99 / max`,
      (r) => `${ms(r.loaded.p50)} / ${ms(r.loaded.p99)} / ${ms(r.loaded.max)}`,
    ],
    ['/healthz requests during the load', (r) => String(r.loaded.count)],
    ['responses zstd / identity', (r) => `${r.zstdResponses} / ${r.identityResponses}`],
    ['all downloads done in', (r) => `${r.loadSeconds.toFixed(1)} s (slowest ${r.slowestDownload.toFixed(1)} s)`],
  ];
  console.log(`${CLIENTS} concurrent GETs of one ${NAR_SIZE / MiB} MiB uncompressed NAR with Accept-Encoding: zstd`);
  console.log(`(${cpus().length} CPUs, load average ${loadavg()[0].toFixed(1)}, Node ${process.versions.node})\n`);
  console.log(`| metric | ${results.map(([n]) => n).join(' | ')} |`);
  console.log(`|---|${results.map(() => '---').join('|')}|`);
  for (const [label, cell] of rows) console.log(`| ${label} | ${results.map(([, r]) => cell(r)).join(' | ')} |`);
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
