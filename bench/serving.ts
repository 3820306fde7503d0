/**
 * Serving benchmark (issues 3 and 12): ncps next to nginx serving the same files (hits), next to the
 * upstream itself (misses), and its memory, in one table. Run by hand after `npm run build`:
 *
 *   node dist/bench/serving.js
 *
 * Needs nginx (NCPS_BENCH_NGINX, default /usr/sbin/nginx), wrk, gcc and taskset. Everything listens on
 * 127.0.0.1 and lives in a temporary directory removed at the end. The servers (ncps, nginx) run pinned
 * to one CPU (NCPS_BENCH_SERVER_CPU, default 0), everything else — this process, the upstream (a
 * child process), wrk, the splice client, s3rver — to another (NCPS_BENCH_CLIENT_CPU, default 1).
 * Options, all environment variables: see bench/README.md.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Agent, request as httpRequest } from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { formatPublicKey, nix32Encode } from 'src/nix';
import { BARE_KINDS, BareServer, startBare, startPassThrough } from './serving/bare-servers';
import { BACKEND_DESCRIPTIONS, BACKEND_NAMES, Backend, BackendName, prepareBackend } from './serving/backends';
import {
  Child,
  freePort,
  mainThreadCpuNs,
  memory,
  pinSelf,
  quiet,
  startPinned,
  stop,
  waitUntilUp,
  withChildren,
} from './serving/processes';
import { SpliceResult, buildSpliceClient, runSpliceClient } from './serving/splice-client';
import { TimedClient } from './serving/timed-client';
import { MissPath, Upstream, narInfo, sha256, storePathHash } from './serving/upstream';
import { WrkResult, wrk } from './serving/wrk';

const MiB = 1024 * 1024;
const MB = 1e6;

const SECTIONS = ['narinfo', 'nar', 'miss', 'memory'] as const;
type Section = (typeof SECTIONS)[number];

function listOption<T extends string>(name: string, allowed: readonly T[], fallback: readonly T[]): T[] {
  const raw = process.env[name];
  if (raw === undefined) return [...fallback];
  const values = raw
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean);
  const unknown = values.filter((v) => !(allowed as readonly string[]).includes(v));
  if (unknown.length > 0) throw new Error(`${name}: unknown ${unknown.join(', ')} (known: ${allowed.join(', ')})`);
  return values as T[];
}

function numberOption(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!(value > 0)) throw new Error(`${name}: a positive number, not ${JSON.stringify(raw)}`);
  return value;
}

const MAIN = process.env.NCPS_BENCH_MAIN || join(__dirname, '../src/main.js');
const NGINX = process.env.NCPS_BENCH_NGINX || '/usr/sbin/nginx';
const SERVER_CPU = process.env.NCPS_BENCH_SERVER_CPU || '0';
const CLIENT_CPU = process.env.NCPS_BENCH_CLIENT_CPU || '1';
const ONLY = new Set(listOption<Section>('NCPS_BENCH_ONLY', SECTIONS, SECTIONS));
const BACKENDS = listOption<BackendName>('NCPS_BENCH_BACKENDS', BACKEND_NAMES, []);
/** Of each measured load cell; a warm-up (JIT, page cache, connections) runs first and is not counted. */
const SECONDS = numberOption('NCPS_BENCH_SECONDS', 10);
const WARM_UP_SECONDS = numberOption('NCPS_BENCH_WARMUP_SECONDS', Math.min(2, SECONDS));
/** Fresh paths measured per miss size, after MISS_WARM_UP uncounted ones. */
const MISSES = Math.round(numberOption('NCPS_BENCH_MISSES', 10));
const MISS_WARM_UP = 3;
const IDLE_SECONDS = numberOption('NCPS_BENCH_IDLE_SECONDS', 30);
const MEMORY_NAR_MIB = numberOption('NCPS_BENCH_MEMORY_MIB', 1024);

const NARINFOS = 1000;
const NARINFO_CONNECTIONS = 32;
const NAR_SIZES = [64 * MiB, 1 * MiB];
const NAR_CONNECTIONS = 4;
const MISS_SIZES = [1 * MiB, 32 * MiB];
const MEMORY_CLIENTS = 10;
const IDLE_FIRST_SECONDS = 3;
const RSS_SAMPLE_MS = 50;

interface Row {
  figure: string;
  ncps: string;
  reference: string;
  ratio: string;
}

/** 43530.2 → "43 530": grouped by spaces (no comma to read as a decimal point). */
function num(value: number, digits = 0): string {
  const [int, frac] = value.toFixed(digits).split('.');
  return int.replace(/\B(?=(\d{3})+(?!\d))/g, ' ') + (frac ? `.${frac}` : '');
}
const ms = (value: number): string => `${num(value, value < 10 ? 2 : 1)} ms`;
const times = (ours: number, theirs: number): string => `${(ours / theirs).toFixed(2)}×`;
const added = (ours: number, theirs: number): string => `${ours >= theirs ? '+' : '−'}${ms(Math.abs(ours - theirs))}`;
const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const sleep = (msec: number) => new Promise((r) => setTimeout(r, msec));
const sizeName = (bytes: number): string => (bytes >= 1024 * MiB ? `${bytes / 1024 / MiB} GiB` : `${bytes / MiB} MiB`);

// ---------------------------------------------------------------------------------------------
// HTTP from this process: uploads and checks (the miss measurements have their own client).

const agent = new Agent({ keepAlive: true });

interface Fetched {
  status: number;
  body: Buffer;
  /** performance.now() at the first body byte, and at the end. */
  firstByteAt: number;
  endAt: number;
}

function fetch(method: string, url: string, body?: Buffer | string): Promise<Fetched> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, agent }, (res) => {
      const chunks: Buffer[] = [];
      let firstByteAt = NaN;
      res.on('data', (chunk: Buffer) => {
        if (chunks.length === 0) firstByteAt = performance.now();
        chunks.push(chunk);
      });
      res.on('end', () => {
        const endAt = performance.now();
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), firstByteAt, endAt });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function expectOk(method: string, url: string, body?: Buffer | string): Promise<Fetched> {
  const res = await fetch(method, url, body);
  if (res.status < 200 || res.status > 299) throw new Error(`${method} ${url}: ${res.status} ${res.body.toString().slice(0, 200)}`);
  return res;
}

// ---------------------------------------------------------------------------------------------
// The servers.

interface Server {
  label: string;
  url: string;
  /** Whose CPU time is the server's (nginx: master and worker). */
  pids: number[];
  process: Child;
}

async function startNcps(dir: string, upstream: Upstream, name: string, flags: string[]): Promise<Server> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = startPinned(SERVER_CPU, process.execPath, [
    MAIN,
    'serve',
    `--server-addr=127.0.0.1:${port}`,
    `--cache-data-dir=${join(dir, name)}`,
    '--cache-hostname=bench',
    `--cache-upstream-url=${upstream.url}`,
    `--cache-upstream-public-key=${formatPublicKey(upstream.key.publicKey)}`,
    ...flags,
  ]);
  try {
    await waitUntilUp(`${url}/healthz`, child);
  } catch (e) {
    await stop(child);
    throw e;
  }
  return { label: name, url, pids: [child.pid], process: child };
}

async function startNginx(dir: string, www: string): Promise<Server> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
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
  server { listen 127.0.0.1:${port}; root ${www}; }
}
`,
  );
  const child = startPinned(SERVER_CPU, NGINX, ['-p', prefix, '-c', join(prefix, 'nginx.conf'), '-e', join(prefix, 'error.log')]);
  await waitUntilUp(url, child);
  return { label: 'nginx', url, pids: await withChildren(child.pid), process: child };
}

// ---------------------------------------------------------------------------------------------
// What the hits are served from: the same narinfos and NARs, files for nginx and uploads for ncps.

interface HitContent {
  /** Each with the small NAR it names (ncps takes a narinfo only once its NAR is stored). */
  narinfos: { path: string; text: string; nar: { path: string; body: Buffer } }[];
  nars: { size: number; path: string; body: Buffer }[];
}

async function writeHitContent(www: string, upstream: Upstream): Promise<HitContent> {
  await mkdir(join(www, 'nar'), { recursive: true });
  const narinfos: HitContent['narinfos'] = [];
  const baseNames: string[] = [];
  for (let i = 0; i < NARINFOS; i++) {
    const hash = storePathHash();
    const nar = randomBytes(4096);
    const narHash = nix32Encode(sha256(nar));
    // Up to 3 references to earlier paths, like a small closure: a narinfo of ~600 bytes.
    const text = narInfo(upstream.key.secretKey, hash, `hit-${i}`, { hash: narHash, size: nar.length }, baseNames.slice(-3));
    await writeFile(join(www, `${hash}.narinfo`), text);
    narinfos.push({ path: `/${hash}.narinfo`, text, nar: { path: `/nar/${narHash}.nar`, body: nar } });
    baseNames.push(`${hash}-hit-${i}`);
  }
  const nars = [];
  for (const size of NAR_SIZES) {
    const body = randomBytes(size);
    const path = `/nar/${nix32Encode(sha256(body))}.nar`;
    await writeFile(join(www, path), body);
    nars.push({ size, path, body });
  }
  return { narinfos, nars };
}

/** Uploads over UPLOAD_CONCURRENCY connections: on a database server, one at a time takes a minute. */
const UPLOAD_CONCURRENCY = 8;

async function upload(ncps: Server, content: HitContent): Promise<void> {
  const queue = [...content.narinfos];
  const worker = async () => {
    for (let next = queue.shift(); next; next = queue.shift()) {
      await expectOk('PUT', `${ncps.url}${next.nar.path}`, next.nar.body);
      await expectOk('PUT', `${ncps.url}${next.path}`, next.text);
    }
  };
  await Promise.all(Array.from({ length: UPLOAD_CONCURRENCY }, worker));
  for (const { path, body } of content.nars) await expectOk('PUT', `${ncps.url}${path}`, body);
}

// ---------------------------------------------------------------------------------------------
// The measurements.

/** Cells whose measured window overran: the load generator itself was not scheduled for a while. */
const warnings: string[] = [];

function checkWindow(cell: string, seconds: number): void {
  // wrk's window also holds its connection set-up.
  if (seconds > SECONDS * 1.1 + 0.2) {
    warnings.push(
      `${cell}: the ${SECONDS} s window took ${seconds.toFixed(1)} s (the client was not scheduled: machine busy); its figures are not reliable`,
    );
  }
}

async function narinfoHits(dir: string, server: Server, content: HitContent): Promise<WrkResult> {
  const options = {
    dir,
    url: server.url,
    paths: content.narinfos.map((n) => n.path),
    connections: NARINFO_CONNECTIONS,
    serverPids: server.pids,
    cpu: CLIENT_CPU,
  };
  await wrk({ ...options, seconds: WARM_UP_SECONDS });
  const result = await wrk({ ...options, seconds: SECONDS });
  checkWindow(`narinfo hits on ${server.label}`, result.seconds);
  return result;
}

function narinfoRows(tag: string, ours: WrkResult, theirs: WrkResult): Row[] {
  const figure = `${tag}narinfo hits, ${NARINFO_CONNECTIONS} connections`;
  const rate = (r: WrkResult) => r.requests / r.seconds;
  const perCpu = (r: WrkResult) => r.requests / r.cpuSeconds;
  const cpu = (r: WrkResult) => `${Math.round((100 * r.cpuSeconds) / r.seconds)}% CPU`;
  return [
    {
      figure: `${figure}: requests/s`,
      ncps: `${num(rate(ours))} (${cpu(ours)})`,
      reference: `nginx ${num(rate(theirs))} (${cpu(theirs)})`,
      ratio: times(rate(ours), rate(theirs)),
    },
    {
      figure: `${figure}: p50 / p99 latency`,
      ncps: `${ms(ours.p50Ms)} / ${ms(ours.p99Ms)}`,
      reference: `${ms(theirs.p50Ms)} / ${ms(theirs.p99Ms)}`,
      ratio: `p99 ${times(ours.p99Ms, theirs.p99Ms)}`,
    },
    {
      figure: `${figure}: requests per server CPU-second`,
      ncps: num(perCpu(ours)),
      reference: num(perCpu(theirs)),
      ratio: times(perCpu(ours), perCpu(theirs)),
    },
  ];
}

/** ncps's narinfo hits per server CPU-second beside those of a bare node:http server and a bare Fastify route. */
async function ceilingRow(dir: string, content: HitContent, ours: WrkResult): Promise<Row> {
  const perCpu = (r: WrkResult) => r.requests / r.cpuSeconds;
  const bare: string[] = [];
  const ratios: string[] = [];
  for (const kind of BARE_KINDS) {
    const server = await startBare(kind, dir, SERVER_CPU);
    try {
      const theirs = await narinfoHits(dir, server, content);
      bare.push(`${server.label} ${num(perCpu(theirs))}`);
      ratios.push(`${times(perCpu(ours), perCpu(theirs))} ${kind}`);
    } finally {
      await stop(server.process);
    }
  }
  return {
    figure: `narinfo hits, ${NARINFO_CONNECTIONS} connections: requests per server CPU-second, beside Node's ceiling (one fixed 600-byte body, no lookup)`,
    ncps: num(perCpu(ours)),
    reference: bare.join(' / '),
    ratio: ratios.join(' / '),
  };
}

async function narHits(client: string, server: Server, nar: { size: number; path: string }): Promise<SpliceResult> {
  const result = await runSpliceClient(client, {
    url: `${server.url}${nar.path}`,
    connections: NAR_CONNECTIONS,
    warmUpSeconds: WARM_UP_SECONDS,
    seconds: SECONDS,
    serverPids: server.pids,
    cpu: CLIENT_CPU,
  });
  checkWindow(`${sizeName(nar.size)} NAR hits on ${server.label}`, result.seconds);
  return result;
}

function narRows(tag: string, size: number, ours: SpliceResult, theirs: SpliceResult): Row[] {
  const figure = `${tag}NAR hits, ${sizeName(size)}, ${NAR_CONNECTIONS} connections, splice client`;
  const rate = (r: SpliceResult) => r.bytes / MB / r.seconds;
  const perCpu = (r: SpliceResult) => r.bytes / MB / r.cpuSeconds;
  const cpu = (r: SpliceResult) => `${Math.round((100 * r.cpuSeconds) / r.seconds)}% CPU`;
  return [
    {
      figure: `${figure}: MB/s`,
      ncps: `${num(rate(ours))} (${cpu(ours)})`,
      reference: `nginx ${num(rate(theirs))} (${cpu(theirs)})`,
      ratio: times(rate(ours), rate(theirs)),
    },
    {
      figure: `${figure}: MB per server CPU-second`,
      ncps: num(perCpu(ours)),
      reference: num(perCpu(theirs)),
      ratio: times(perCpu(ours), perCpu(theirs)),
    },
  ];
}

interface Substitution {
  narinfoMs: number;
  /** CPU time of the server's main thread while the client waited for the narinfo (NaN: not measured). */
  narinfoCpuMs: number;
  firstByteMs: number;
  wholeMs: number;
}

/**
 * What a Nix client does for a path: GET its narinfo, then the NAR its URL names. Times from the
 * start to the whole narinfo, to the first NAR byte and to the last; the bytes are checked after.
 * With `serverPid`, also the CPU time that server's main thread spent meanwhile: a figure that
 * moves much less than the times on a shared machine.
 */
async function substitute(client: TimedClient, base: string, path: MissPath, serverPid?: number): Promise<Substitution> {
  const ok = async (url: string, keep: 'text' | 'sha256') => {
    const res = await client.get(url, keep);
    if (res.status !== 200) throw new Error(`GET ${url}: ${res.status} ${res.text.slice(0, 200)}`);
    return res;
  };
  const cpuBefore = serverPid === undefined ? 0n : mainThreadCpuNs(serverPid);
  const started = performance.now();
  const narinfo = await ok(`${base}/${path.hash}.narinfo`, 'text');
  const narinfoMs = performance.now() - started;
  const narinfoCpuMs = serverPid === undefined ? NaN : Number(mainThreadCpuNs(serverPid) - cpuBefore) / 1e6;
  const url = /^URL: (.*)$/m.exec(narinfo.text)?.[1];
  const res = await ok(`${base}/${url}`, 'sha256');
  if (res.bytes !== path.size || nix32Encode(res.sha256!) !== path.narHash) {
    throw new Error(`${base}/${url}: wrong NAR bytes (${res.bytes} of ${path.size}, or another hash)`);
  }
  return { narinfoMs, narinfoCpuMs, firstByteMs: res.firstByteAt - started, wholeMs: res.endAt - started };
}

/**
 * Each fresh path straight from the upstream, then through ncps (and through `bare`, the bare Node
 * pass-through, when given), path by path: all see the same machine load.
 */
async function missRows(tag: string, ncps: Server, upstream: Upstream, bare?: BareServer): Promise<Row[]> {
  const rows: Row[] = [];
  const client = new TimedClient();
  try {
    for (const size of MISS_SIZES) {
      const ours: Substitution[] = [];
      const theirs: Substitution[] = [];
      const bareOnes: Substitution[] = [];
      for (let i = 0; i < MISS_WARM_UP + MISSES; i++) {
        const path = await upstream.addRandomPath(`miss-${size}-${i}`, size);
        const direct = await substitute(client, upstream.url, path);
        const proxied = await substitute(client, ncps.url, path, ncps.pids[0]);
        const passed = bare && (await substitute(client, bare.url, path));
        await upstream.forget(path);
        if (i >= MISS_WARM_UP) {
          theirs.push(direct);
          ours.push(proxied);
          if (passed) bareOnes.push(passed);
        }
        // What ncps still does for this path (the commit to storage) is not timed in the next.
        await quiet(ncps.pids[0]);
      }
      const figure = `${tag}miss, fresh ${sizeName(size)} NAR (median of ${MISSES})`;
      const m = (list: Substitution[], key: keyof Substitution) => median(list.map((s) => s[key]));
      rows.push({
        figure: `${figure}: time to the whole NAR`,
        ncps: ms(m(ours, 'wholeMs')),
        reference: `upstream ${ms(m(theirs, 'wholeMs'))}`,
        ratio: times(m(ours, 'wholeMs'), m(theirs, 'wholeMs')),
      });
      if (bareOnes.length > 0) {
        rows.push({
          figure: `${figure}: time to the whole NAR, beside a bare Node pass-through on ncps's CPU (sha256, file write, send; no lookup, lock, signature or database)`,
          ncps: ms(m(ours, 'wholeMs')),
          reference: `bare ${ms(m(bareOnes, 'wholeMs'))} (${times(m(bareOnes, 'wholeMs'), m(theirs, 'wholeMs'))} the upstream)`,
          ratio: times(m(ours, 'wholeMs'), m(bareOnes, 'wholeMs')),
        });
      }
      rows.push(
        {
          figure: `${figure}: time to the narinfo`,
          ncps: ms(m(ours, 'narinfoMs')),
          reference: ms(m(theirs, 'narinfoMs')),
          ratio: added(m(ours, 'narinfoMs'), m(theirs, 'narinfoMs')),
        },
        {
          figure: `${figure}: ncps main-thread CPU while the narinfo was awaited`,
          ncps: ms(m(ours, 'narinfoCpuMs')),
          reference: '',
          ratio: '',
        },
        {
          figure: `${figure}: time to the first NAR byte`,
          ncps: ms(m(ours, 'firstByteMs')),
          reference: ms(m(theirs, 'firstByteMs')),
          ratio: added(m(ours, 'firstByteMs'), m(theirs, 'firstByteMs')),
        },
      );
    }
  } finally {
    client.close();
  }
  return rows;
}

/**
 * A fresh ncps with its embedded defaults: its RSS while idle, then its peak RSS while MEMORY_CLIENTS
 * clients pull one uncached NAR of MEMORY_NAR_MIB through it at once (the NAR is generated by the
 * upstream as it is sent, and received by the splice client: no copy of it is held anywhere).
 */
async function memoryRows(dir: string, client: string, upstream: Upstream): Promise<Row[]> {
  const size = MEMORY_NAR_MIB * MiB;
  const path = await upstream.addGeneratedPath('memory', size);
  const ncps = await startNcps(dir, upstream, 'ncps-memory', []);
  try {
    await sleep(IDLE_FIRST_SECONDS * 1000);
    const idleFirst = await memory(ncps.pids[0]);
    await sleep(Math.max(0, IDLE_SECONDS - IDLE_FIRST_SECONDS) * 1000);
    const idleLast = await memory(ncps.pids[0]);

    await expectOk('GET', `${ncps.url}/${path.hash}.narinfo`);
    let peakSampled = 0;
    const sampler = setInterval(() => {
      memory(ncps.pids[0]).then(
        (m) => (peakSampled = Math.max(peakSampled, m.rss)),
        () => undefined,
      );
    }, RSS_SAMPLE_MS);
    const started = performance.now();
    let result: SpliceResult;
    try {
      result = await runSpliceClient(client, {
        url: `${ncps.url}${path.narPath}`,
        connections: MEMORY_CLIENTS,
        requestsPerConnection: 1,
        seconds: 900,
        serverPids: ncps.pids,
        cpu: CLIENT_CPU,
      });
    } finally {
      clearInterval(sampler);
    }
    const seconds = (performance.now() - started) / 1000;
    const after = await memory(ncps.pids[0]);
    peakSampled = Math.max(peakSampled, after.rss);
    if (result.requests !== MEMORY_CLIENTS || result.bytes !== MEMORY_CLIENTS * size) {
      throw new Error(`memory: ${result.requests} of ${MEMORY_CLIENTS} NARs, ${result.bytes} of ${MEMORY_CLIENTS * size} bytes`);
    }
    const mib = (bytes: number) => `${num(bytes / MiB, 1)} MiB`;
    return [
      { figure: `RSS idle, ${IDLE_FIRST_SECONDS} s after start (embedded defaults)`, ncps: mib(idleFirst.rss), reference: '', ratio: '' },
      { figure: `RSS idle, ${IDLE_SECONDS} s after start`, ncps: mib(idleLast.rss), reference: '', ratio: '' },
      {
        figure: `peak RSS while ${MEMORY_CLIENTS} clients pull one uncached ${sizeName(size)} NAR`,
        ncps: `${mib(peakSampled)} (VmHWM ${mib(after.peak)})`,
        reference: `all done in ${num(seconds, 1)} s`,
        ratio: '',
      },
    ];
  } finally {
    await stop(ncps.process);
    await upstream.forget(path);
  }
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  pinSelf(CLIENT_CPU);
  const dir = await mkdtemp(join(tmpdir(), 'ncps-bench-serving-'));
  // nginx's workers run as nobody when started by root: let them read the files.
  await chmod(dir, 0o755);
  const loadBefore = loadavg();
  const upstream = new Upstream(CLIENT_CPU);
  const rows: Row[] = [];
  const hits = ONLY.has('narinfo') || ONLY.has('nar');
  let nginx: Server | undefined;
  try {
    const client = ONLY.has('nar') || ONLY.has('memory') ? await buildSpliceClient(dir) : '';
    await upstream.start();
    const content = hits ? await writeHitContent(join(dir, 'www'), upstream) : undefined;
    if (hits) nginx = await startNginx(dir, join(dir, 'www'));
    // nginx is measured beside the default ncps; the backend rows are compared with those figures.
    let nginxNarinfo: WrkResult | undefined;
    const nginxNars = new Map<number, SpliceResult>();

    const targets: (BackendName | undefined)[] = [undefined, ...BACKENDS];
    for (const name of targets) {
      const sections = name === undefined ? ONLY : new Set([...ONLY].filter((s) => s !== 'memory'));
      if (![...sections].some((s) => s !== 'memory')) continue;
      const backend: Backend | undefined = name ? await prepareBackend(name) : undefined;
      const tag = backend ? `[${backend.name}] ` : '';
      try {
        const ncps = await startNcps(dir, upstream, `ncps-${name ?? 'default'}`, [
          '--cache-allow-put-verb=true',
          ...(backend?.flags ?? []),
        ]);
        try {
          if (content) await upload(ncps, content);
          if (sections.has('narinfo') && content && nginx) {
            const ours = await narinfoHits(dir, ncps, content);
            nginxNarinfo ??= await narinfoHits(dir, nginx, content);
            rows.push(...narinfoRows(tag, ours, nginxNarinfo));
            if (!backend) rows.push(await ceilingRow(dir, content, ours));
          }
          if (sections.has('nar') && content && nginx) {
            for (const nar of content.nars) {
              const ours = await narHits(client, ncps, nar);
              if (!nginxNars.has(nar.size)) nginxNars.set(nar.size, await narHits(client, nginx, nar));
              rows.push(...narRows(tag, nar.size, ours, nginxNars.get(nar.size)!));
            }
          }
          if (sections.has('miss')) {
            // The bare pass-through beside the embedded defaults only: it has no backend.
            const bare = backend ? undefined : await startPassThrough(dir, SERVER_CPU, upstream.url);
            try {
              rows.push(...(await missRows(tag, ncps, upstream, bare)));
            } finally {
              if (bare) await stop(bare.process);
            }
          }
        } finally {
          await stop(ncps.process);
        }
      } finally {
        await backend?.cleanup();
      }
    }
    if (nginx) await stop(nginx.process);
    if (ONLY.has('memory')) rows.push(...(await memoryRows(dir, client, upstream)));

    console.log(
      `ncps ${MAIN} vs nginx ${NGINX} (hits) and the upstream itself (misses); Node ${process.version}, ${cpus().length} CPUs ` +
        `(servers on ${SERVER_CPU}, clients on ${CLIENT_CPU}); load average ${loadBefore[0].toFixed(2)} before, ${loadavg()[0].toFixed(2)} after; ` +
        `${WARM_UP_SECONDS} s warm-up + ${SECONDS} s per load cell; MB = 10^6 bytes`,
    );
    for (const name of BACKENDS) console.log(`[${name}]: ${BACKEND_DESCRIPTIONS[name]}; otherwise the embedded defaults`);
    console.log('\n| figure | ncps | reference | ratio (ncps ÷ reference) |');
    console.log('|---|---|---|---|');
    for (const row of rows) console.log(`| ${row.figure} | ${row.ncps} | ${row.reference} | ${row.ratio} |`);
    for (const warning of warnings) console.log(`\nwarning: ${warning}`);
  } finally {
    if (nginx) await stop(nginx.process);
    await upstream.close();
    agent.destroy();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
