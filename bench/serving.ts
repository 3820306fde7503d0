/**
 * Serving benchmark (issue 3): ncps next to nginx serving the same files from disk (hits), and next to
 * fetching straight from the upstream (misses). Run by hand after `npm run build`:
 *
 *   node dist/bench/serving.js
 *
 * Needs nginx (NCPS_BENCH_NGINX, default /usr/sbin/nginx) and wrk on PATH (`apt-get install -y nginx-light
 * wrk`). Everything listens on 127.0.0.1 and lives in a temporary directory removed at the end.
 *
 * ncps runs as the built `ncps serve` with its embedded defaults (SQLite, local storage), prewarmed by
 * PUT uploads of the very files nginx serves. Both servers get one process (nginx: one worker), so that on
 * a 2-core machine the server has one core and wrk the other.
 */
import { ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { Agent, createServer, request as httpRequest } from 'node:http';
import { AddressInfo, createServer as createTcpServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { NarInfo, SecretKey, formatPublicKey, generateKeyPair, nix32Encode, serializeNarInfo, signNarInfo } from 'src/nix';

const NGINX = process.env.NCPS_BENCH_NGINX ?? '/usr/sbin/nginx';
const MAIN = join(__dirname, '../src/main.js');
const MiB = 1024 * 1024;
const NARINFOS = 1000;
const NARINFO_CONNECTIONS = 32;
const NAR_SIZES = [1 * MiB, 64 * MiB];
const NAR_CLIENTS = 4;
const WARM_UP = '2s';
const RUN = '10s';
const MISS_PATHS = 20;
/** Misses run first on each side and are not counted: they JIT-compile the miss path of both servers. */
const MISS_WARM_UP = 3;
const MISS_NAR_SIZE = 1 * MiB;

const agent = new Agent({ keepAlive: true });

interface Response {
  status: number;
  body: Buffer;
  /** performance.now() at the first body byte. */
  firstByteAt: number;
}

function request(method: string, url: string, body?: Buffer | string): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, agent }, (res) => {
      const chunks: Buffer[] = [];
      let firstByteAt = NaN;
      res.on('data', (chunk: Buffer) => {
        if (chunks.length === 0) firstByteAt = performance.now();
        chunks.push(chunk);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), firstByteAt }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function expectOk(method: string, url: string, body?: Buffer | string): Promise<Response> {
  const res = await request(method, url, body);
  if (res.status < 200 || res.status > 299) throw new Error(`${method} ${url}: ${res.status} ${res.body.toString().slice(0, 200)}`);
  return res;
}

/** A free loopback TCP port (closed again before it is returned). */
async function freePort(): Promise<number> {
  const server = createTcpServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

/** Polls `url` until it answers with any status; throws with `logs()` when `child` dies or 30 s pass. */
async function waitUntilUp(url: string, child: ChildProcess, logs: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${url}: the server exited with ${child.exitCode}\n${logs()}`);
    if (await request('GET', url).then(() => true, () => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not answer within 30 s\n${logs()}`);
}

/** Starts a child whose output is kept (the last 64 KiB) for error messages. */
function startChild(command: string, args: string[]): { child: ChildProcess; logs: () => string } {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  for (const stream of [child.stdout!, child.stderr!]) {
    stream.setEncoding('utf8').on('data', (chunk: string) => (output = (output + chunk).slice(-65_536)));
  }
  return { child, logs: () => output };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  await once(child, 'exit');
}

const sha256 = (data: Buffer): Buffer => createHash('sha256').update(data).digest();
const storePathHash = (): string => nix32Encode(randomBytes(20));

/** A narinfo as `nix copy` writes it for an uncompressed NAR, signed by the upstream's key. */
function narInfo(key: SecretKey, hash: string, name: string, nar: { hash: string; size: number }, references: string[]): string {
  const info: NarInfo = {
    storePath: `/nix/store/${hash}-${name}`,
    url: `nar/${nar.hash}.nar`,
    compression: 'none',
    fileHash: `sha256:${nar.hash}`,
    fileSize: nar.size,
    narHash: `sha256:${nar.hash}`,
    narSize: nar.size,
    references,
    sigs: [],
  };
  return serializeNarInfo(signNarInfo(info, key));
}

interface Server {
  url: string;
  /** The process whose CPU time is measured, with its children (nginx's worker). */
  pid: number;
}

/**
 * CPU seconds (user + system) used so far by `pid` and its live children, from /proc. The machine is
 * shared, so a server's rate per CPU-second it used is steadier than its rate per wall-clock second.
 */
async function cpuSeconds(pid: number): Promise<number> {
  const children = (await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8')).split(' ').filter(Boolean).map(Number);
  let ticks = 0;
  for (const p of [pid, ...children]) {
    // utime and stime are fields 14 and 15; counting starts after the parenthesised command name (field 2).
    const stat = await readFile(`/proc/${p}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks / 100; // USER_HZ, 100 on every Linux that Node runs on
}

interface WrkResult {
  requests: number;
  bytes: number;
  seconds: number;
  /** Of the server, during the run. */
  cpuSeconds: number;
}

/**
 * Runs wrk (one thread, `connections` keep-alive connections) over `paths` in turn, and reads its
 * summary from a Lua `done` hook; any non-2xx answer or socket error fails the benchmark.
 */
async function wrk(dir: string, server: Server, paths: string[], connections: number, duration: string): Promise<WrkResult> {
  const script = join(dir, 'wrk.lua');
  await writeFile(
    script,
    `local paths = {${paths.map((p) => JSON.stringify(p)).join(',')}}
local i = 0
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
done = function(s)
  local e = s.errors
  io.write(string.format('\\nRESULT {"requests":%d,"bytes":%d,"us":%d,"errors":%d,"status":%d}\\n',
    s.requests, s.bytes, s.duration, e.connect + e.read + e.write + e.timeout, e.status))
end
`,
  );
  const cpuBefore = await cpuSeconds(server.pid);
  const { stdout } = await promisify(execFile)('wrk', ['-t1', `-c${connections}`, `-d${duration}`, '--timeout', '30s', '-s', script, server.url]);
  const cpu = (await cpuSeconds(server.pid)) - cpuBefore;
  const line = /^RESULT (.*)$/m.exec(stdout)?.[1];
  if (!line) throw new Error(`no summary from wrk:\n${stdout}`);
  const r = JSON.parse(line) as { requests: number; bytes: number; us: number; errors: number; status: number };
  if (r.errors > 0 || r.status > 0) throw new Error(`wrk ${server.url}: ${r.errors} socket errors, ${r.status} non-2xx answers`);
  return { requests: r.requests, bytes: r.bytes, seconds: r.us / 1e6, cpuSeconds: cpu };
}

/** A warm-up run (discarded: JIT, page cache, connections), then the measured one. */
async function load(dir: string, server: Server, paths: string[], connections: number): Promise<WrkResult> {
  await wrk(dir, server, paths, connections, WARM_UP);
  return wrk(dir, server, paths, connections, RUN);
}

/**
 * GET narinfo, then GET the NAR its URL names, as a client substitutes: milliseconds from the start
 * to the whole narinfo, and to the NAR's first byte.
 */
async function miss(base: string, hash: string, nar: Buffer): Promise<{ narinfo: number; nar: number }> {
  const started = performance.now();
  const narinfo = await expectOk('GET', `${base}/${hash}.narinfo`);
  const narinfoDone = performance.now();
  const url = /^URL: (.*)$/m.exec(narinfo.body.toString())?.[1];
  const res = await expectOk('GET', `${base}/${url}`);
  if (!res.body.equals(nar)) throw new Error(`${base}/${url}: wrong NAR bytes`);
  return { narinfo: narinfoDone - started, nar: res.firstByteAt - started };
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ncps-bench-serving-'));
  // nginx's workers run as nobody when started by root: let them read the files.
  await chmod(dir, 0o755);
  const www = join(dir, 'www');
  await mkdir(join(www, 'nar'), { recursive: true });
  const upstreamKey = generateKeyPair('bench-upstream-1');
  const loadBefore = loadavg();
  const running: ChildProcess[] = [];

  // The upstream of the miss measurement: files in memory, answered as fast as Node can.
  const upstreamFiles = new Map<string, Buffer>([['/nix-cache-info', Buffer.from('StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n')]]);
  const misses = Array.from({ length: MISS_WARM_UP + MISS_PATHS }, (_, i) => {
    const nar = randomBytes(MISS_NAR_SIZE);
    const narHash = nix32Encode(sha256(nar));
    const hash = storePathHash();
    upstreamFiles.set(`/${hash}.narinfo`, Buffer.from(narInfo(upstreamKey.secretKey, hash, `miss-${i}`, { hash: narHash, size: nar.length }, [])));
    upstreamFiles.set(`/nar/${narHash}.nar`, nar);
    return { hash, nar };
  });
  const upstream = createServer((req, res) => {
    const body = upstreamFiles.get((req.url ?? '/').split('?')[0]);
    if (body) res.writeHead(200, { 'content-length': body.length }).end(body);
    else res.writeHead(404).end();
  }).listen(0, '127.0.0.1');
  await once(upstream, 'listening');
  const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;

  try {
    const ncpsPort = await freePort();
    const ncpsUrl = `http://127.0.0.1:${ncpsPort}`;
    const ncps = startChild(process.execPath, [
      MAIN,
      'serve',
      `--server-addr=127.0.0.1:${ncpsPort}`,
      `--cache-data-dir=${join(dir, 'ncps')}`,
      '--cache-hostname=bench',
      '--cache-allow-put-verb=true',
      `--cache-upstream-url=${upstreamUrl}`,
      `--cache-upstream-public-key=${formatPublicKey(upstreamKey.publicKey)}`,
    ]);
    running.push(ncps.child);
    await waitUntilUp(`${ncpsUrl}/healthz`, ncps.child, ncps.logs);

    const nginxPort = await freePort();
    const nginxUrl = `http://127.0.0.1:${nginxPort}`;
    const prefix = join(dir, 'nginx');
    await mkdir(prefix);
    const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `${t}_temp_path ${join(prefix, t)};`).join(' ');
    await writeFile(
      join(prefix, 'nginx.conf'),
      // Debian's stock settings (sendfile, tcp_nopush), one worker, and no access log: ncps does not log hits either.
      `daemon off; worker_processes 1; pid ${join(prefix, 'nginx.pid')};
events { worker_connections 1024; }
http {
  sendfile on; tcp_nopush on; access_log off; ${temp}
  types { text/x-nix-narinfo narinfo; application/x-nix-nar nar; }
  server { listen 127.0.0.1:${nginxPort}; root ${www}; }
}
`,
    );
    const nginx = startChild(NGINX, ['-p', prefix, '-c', join(prefix, 'nginx.conf'), '-e', join(prefix, 'error.log')]);
    running.push(nginx.child);
    await waitUntilUp(nginxUrl, nginx.child, nginx.logs);
    const servers: [Server, Server] = [
      { url: ncpsUrl, pid: ncps.child.pid! },
      { url: nginxUrl, pid: nginx.child.pid! },
    ];

    // The same narinfos and NARs, written for nginx and uploaded to ncps.
    const narinfoPaths: string[] = [];
    const baseNames: string[] = [];
    for (let i = 0; i < NARINFOS; i++) {
      const hash = storePathHash();
      // Up to 3 references to earlier paths, like a small closure: a narinfo of ~600 bytes.
      const text = narInfo(upstreamKey.secretKey, hash, `hit-${i}`, { hash: nix32Encode(randomBytes(32)), size: 4096 }, baseNames.slice(-3));
      await writeFile(join(www, `${hash}.narinfo`), text);
      await expectOk('PUT', `${ncpsUrl}/${hash}.narinfo`, text);
      narinfoPaths.push(`/${hash}.narinfo`);
      baseNames.push(`${hash}-hit-${i}`);
    }
    const nars: { size: number; path: string }[] = [];
    for (const size of NAR_SIZES) {
      const nar = randomBytes(size);
      const path = `/nar/${nix32Encode(sha256(nar))}.nar`;
      await writeFile(join(www, path), nar);
      await expectOk('PUT', `${ncpsUrl}${path}`, nar);
      nars.push({ size, path });
    }

    const rows: string[][] = [];
    const ratio = (ours: number, theirs: number): string => `${(ours / theirs).toFixed(2)}×`;
    /** Two rows: `amount` per wall-clock second, and per CPU second the server used. */
    const compare = async (what: string, unit: string, paths: string[], connections: number, amount: (r: WrkResult) => number): Promise<void> => {
      const results = [await load(dir, servers[0], paths, connections), await load(dir, servers[1], paths, connections)];
      for (const [per, time] of [['s', (r: WrkResult) => r.seconds], ['server CPU-s', (r: WrkResult) => r.cpuSeconds]] as const) {
        const [ours, theirs] = results.map((r) => amount(r) / time(r));
        rows.push([`${what}: ${unit}/${per}`, ours.toFixed(0), theirs.toFixed(0), ratio(ours, theirs)]);
      }
    };

    await compare(`narinfo hit (${NARINFOS} paths, ${NARINFO_CONNECTIONS} connections)`, 'requests', narinfoPaths, NARINFO_CONNECTIONS, (r) => r.requests);
    for (const { size, path } of nars) {
      await compare(`NAR hit (${size / MiB} MiB, ${NAR_CLIENTS} clients)`, 'MiB', [path], NAR_CLIENTS, (r) => r.bytes / MiB);
    }

    // Direct and through ncps alternate path by path, so that both see the same machine load.
    const timings: { ncps: { narinfo: number; nar: number }[]; direct: { narinfo: number; nar: number }[] } = { ncps: [], direct: [] };
    for (const [i, { hash, nar }] of misses.entries()) {
      const direct = await miss(upstreamUrl, hash, nar);
      const proxied = await miss(ncpsUrl, hash, nar);
      if (i >= MISS_WARM_UP) {
        timings.direct.push(direct);
        timings.ncps.push(proxied);
      }
    }
    for (const [label, step] of [['narinfo received', 'narinfo'], ['first NAR byte', 'nar']] as const) {
      const [proxied, direct] = [median(timings.ncps.map((t) => t[step])), median(timings.direct.map((t) => t[step]))];
      rows.push([
        `miss (median of ${MISS_PATHS}, ${MISS_NAR_SIZE / MiB} MiB NARs): ${label}`,
        `${proxied.toFixed(2)} ms`,
        `${direct.toFixed(2)} ms`,
        `${ratio(proxied, direct)} (+${(proxied - direct).toFixed(2)} ms)`,
      ]);
    }

    console.log(
      `ncps vs nginx ${NGINX} (hits) and vs the upstream itself (misses); Node ${process.version}, ${cpus().length} CPUs, ` +
        `load average ${loadBefore[0].toFixed(2)} before, ${loadavg()[0].toFixed(2)} after; wrk -t1, ${WARM_UP} warm-up + ${RUN} per cell\n`,
    );
    console.log('| metric | ncps | nginx / direct | ratio (ncps ÷ other) |');
    console.log('|---|---|---|---|');
    for (const row of rows) console.log(`| ${row.join(' | ')} |`);
  } finally {
    for (const child of running.reverse()) await stopChild(child);
    upstream.close();
    agent.destroy();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
