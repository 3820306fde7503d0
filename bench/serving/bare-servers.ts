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
