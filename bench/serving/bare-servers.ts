/**
 * What Node itself does on this machine, for the narinfo-hit rows: a bare node:http server and a bare
 * Fastify route, each answering every GET with one fixed body the size of a narinfo. Neither looks
 * anything up: they are the ceiling of a Node server on one core, beside nginx's.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Child, freePort, startPinned, stop, waitUntilUp } from './processes';

export type BareKind = 'node:http' | 'fastify';
export const BARE_KINDS: readonly BareKind[] = ['node:http', 'fastify'];

/** The body's size: about that of the bench's narinfos. */
const BODY_BYTES = 600;

function source(kind: BareKind, port: number): string {
  const body = `const body = Buffer.alloc(${BODY_BYTES}, 'x');`;
  const headers = `{ 'content-type': 'text/x-nix-narinfo', 'content-length': body.length }`;
  if (kind === 'node:http') {
    return `${body}
require('node:http').createServer((req, res) => { res.writeHead(200, ${headers}); res.end(body); }).listen(${port}, '127.0.0.1');
`;
  }
  return `${body}
const app = require(${JSON.stringify(require.resolve('fastify'))})({ logger: false });
app.get('/:name', (req, reply) => { reply.header('content-type', 'text/x-nix-narinfo').send(body); });
app.listen({ port: ${port}, host: '127.0.0.1' });
`;
}

export interface BareServer {
  label: string;
  url: string;
  pids: number[];
  process: Child;
}

/** Starts the `kind` server from a script written into `dir`, pinned to `cpu`. */
export async function startBare(kind: BareKind, dir: string, cpu: string): Promise<BareServer> {
  const port = await freePort();
  const script = join(dir, `bare-${kind.replace(':', '-')}.js`);
  await writeFile(script, source(kind, port));
  const child = startPinned(cpu, process.execPath, [script]);
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitUntilUp(`${url}/x.narinfo`, child);
  } catch (e) {
    await stop(child);
    throw e;
  }
  return { label: `bare ${kind}`, url, pids: [child.pid], process: child };
}

/**
 * The miss rows' Node reference: a bare node:http server that passes every GET on to the upstream
 * and, for a NAR, does with its bytes what any verifying cache must, on ncps's core — hash them
 * (sha256), write them to a file (1 MiB write queue, as ncps's) and send them on, pausing the
 * upstream while either sink is full. The last byte goes out once the hash is done. No lookup, no
 * lock, no signature, no database; the file is deleted once written.
 */
function passThroughSource(port: number, upstreamUrl: string, dir: string): string {
  return `const http = require('node:http');
const { createHash } = require('node:crypto');
const { createWriteStream, unlink } = require('node:fs');
const { join } = require('node:path');
const upstream = new URL(${JSON.stringify(upstreamUrl)});
const agent = new http.Agent({ keepAlive: true });
let files = 0;
http.createServer((req, res) => {
  const asked = http.get({ host: upstream.hostname, port: upstream.port, path: req.url, agent }, (up) => {
    const headers = { 'content-type': up.headers['content-type'] || 'application/octet-stream' };
    if (up.headers['content-length']) headers['content-length'] = up.headers['content-length'];
    res.writeHead(up.statusCode, headers);
    if (up.statusCode !== 200 || !req.url.endsWith('.nar')) return up.pipe(res);
    const hash = createHash('sha256');
    const path = join(${JSON.stringify(dir)}, 'pass-through-' + files++);
    const file = createWriteStream(path, { highWaterMark: 1024 * 1024 });
    file.on('close', () => unlink(path, () => undefined));
    up.on('data', (chunk) => {
      hash.update(chunk);
      const full = [file.write(chunk) ? null : file, res.write(chunk) ? null : res].filter(Boolean);
      if (full.length === 0) return;
      up.pause();
      let waiting = full.length;
      for (const sink of full) sink.once('drain', () => --waiting === 0 && up.resume());
    });
    up.on('end', () => {
      hash.digest();
      res.end();
      file.end();
    });
  });
  asked.on('error', () => res.destroy());
}).listen(${port}, '127.0.0.1');
`;
}

/** Starts the pass-through server (see passThroughSource) for `upstreamUrl`, pinned to `cpu`. */
export async function startPassThrough(dir: string, cpu: string, upstreamUrl: string): Promise<BareServer> {
  const port = await freePort();
  const script = join(dir, 'bare-pass-through.js');
  await writeFile(script, passThroughSource(port, upstreamUrl, dir));
  const child = startPinned(cpu, process.execPath, [script]);
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitUntilUp(`${url}/nix-cache-info`, child);
  } catch (e) {
    await stop(child);
    throw e;
  }
  return { label: 'bare pass-through', url, pids: [child.pid], process: child };
}
