/**
 * Memory check for S3 storage: uploads a 1 GiB generated stream through S3Storage.put, reads it back
 * through S3Storage.read, and prints the process's peak RSS per phase against its baseline.
 *
 *   npm run build && node dist/bench/s3-memory.js [size in MiB, default 1024]
 *
 * s3rver runs in a child process so that its own buffers do not count in the figures.
 */
import { ChildProcess, fork } from 'node:child_process';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { S3StorageConfig } from 'src/config/config';
import { S3Storage } from 'src/storage/providers/s3.storage';
import { startS3rver } from 'test/support/s3rver';

const SERVE_FLAG = '--serve-s3rver';
const MiB = 1024 * 1024;
const CHUNK = 64 * 1024;
const SAMPLE_EVERY_MS = 100;

/** Child: serve a fresh bucket until the parent goes away. */
async function serveS3rver(): Promise<void> {
  const server = await startS3rver();
  process.send?.(server.config);
  process.once('disconnect', () => void server.stop().then(() => process.exit(0)));
}

function startServerProcess(): Promise<{ child: ChildProcess; config: S3StorageConfig }> {
  const child = fork(__filename, [SERVE_FLAG], { stdio: 'inherit' });
  return new Promise((resolve, reject) => {
    child.once('message', (config) => resolve({ child, config: config as S3StorageConfig }));
    child.once('exit', (code) => reject(new Error(`s3rver process exited with ${code}`)));
  });
}

/** Fresh pseudo-random chunks, allocated one by one like a network stream's, hashed as they go. */
function generated(size: number, hash: ReturnType<typeof createHash>): Readable {
  const cipher = createCipheriv('aes-256-ctr', randomBytes(32), Buffer.alloc(16));
  const zeros = Buffer.alloc(CHUNK);
  async function* chunks() {
    for (let sent = 0; sent < size; sent += CHUNK) {
      const chunk = cipher.update(zeros.subarray(0, Math.min(CHUNK, size - sent)));
      hash.update(chunk);
      yield chunk;
    }
  }
  return Readable.from(chunks(), { objectMode: false });
}

/** Peak RSS while `work` runs, sampled every 100 ms (and once at each end). */
async function measure(work: () => Promise<void>): Promise<{ startRss: number; peakRss: number; seconds: number }> {
  const startRss = process.memoryUsage.rss();
  let peakRss = startRss;
  const timer = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), SAMPLE_EVERY_MS);
  const started = process.hrtime.bigint();
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  peakRss = Math.max(peakRss, process.memoryUsage.rss());
  return { startRss, peakRss, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
}

async function main(): Promise<void> {
  const sizeMiB = Number(process.argv[2] ?? 1024);
  const size = sizeMiB * MiB;
  const { child, config } = await startServerProcess();
  const storage = new S3Storage(config);
  const key = 'nar/bench.nar';
  try {
    // Warm up: load the SDK's lazily required modules and open a connection before the baseline.
    await storage.put('warm-up', Readable.from([Buffer.alloc(1024)]));
    await (await storage.read('warm-up'))?.toArray();
    const baseline = process.memoryUsage.rss();

    const written = createHash('sha256');
    const upload = await measure(async () => {
      await storage.put(key, generated(size, written));
    });
    const readBack = createHash('sha256');
    const download = await measure(async () => {
      const stream = await storage.read(key);
      if (!stream) throw new Error('the uploaded object is missing');
      for await (const chunk of stream) readBack.update(chunk as Buffer);
    });
    if (written.digest('hex') !== readBack.digest('hex')) throw new Error('read back different bytes');

    const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;
    // RSS rarely shrinks once memory is freed, so the read phase starts from what the put left.
    const row = (phase: string, r: { startRss: number; peakRss: number; seconds: number }) => [
      phase,
      mib(r.startRss),
      mib(r.peakRss),
      `+${mib(r.peakRss - baseline)}`,
      `${r.seconds.toFixed(1)} s`,
      `${(sizeMiB / r.seconds).toFixed(0)} MiB/s`,
    ];
    const rows = [
      ['phase', 'RSS at start', 'peak RSS', 'over baseline', 'time', 'throughput'],
      ['baseline', mib(baseline), '', '', '', ''],
      row(`put ${sizeMiB} MiB`, upload),
      row(`read ${sizeMiB} MiB`, download),
    ];
    const widths = rows[0].map((_, column) => Math.max(...rows.map((r) => r[column].length)));
    console.log(`S3Storage memory, ${sizeMiB} MiB object via s3rver (Node ${process.version}); content verified by sha256`);
    for (const r of rows) console.log(r.map((cell, column) => cell.padEnd(widths[column])).join('  '));
  } finally {
    await storage.close();
    child.disconnect();
  }
}

if (process.argv[2] === SERVE_FLAG) {
  void serveS3rver();
} else {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
