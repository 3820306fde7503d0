/**
 * The upstream's process (see upstream.ts): `node upstream-server.js PORT`. GET and HEAD answer the
 * files it holds, 404 otherwise; PUT stores a request's body under its path (or, with the generate
 * headers, a NAR made on the fly as it is sent), POST RANDOM_NAR makes a random NAR, DELETE forgets
 * a path. Listens on 127.0.0.1 only.
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { Readable } from 'node:stream';
import { nix32Encode } from 'src/nix';
import { GENERATE_SEED, GENERATE_SIZE, RANDOM_NAR, generatedChunks, narPathOf, sha256 } from './upstream';

const files = new Map<string, Buffer>([['/nix-cache-info', Buffer.from('StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n')]]);
const generated = new Map<string, { seed: string; size: number }>();

createServer((req, res) => {
  const [path, query] = (req.url ?? '/').split('?');
  if (req.method === 'POST' && path === RANDOM_NAR) {
    const nar = randomBytes(Number(new URLSearchParams(query).get('size')));
    const digest = sha256(nar);
    files.set(narPathOf(nix32Encode(digest)), nar);
    req.resume().on('end', () => res.writeHead(200).end(digest.toString('hex')));
    return;
  }
  if (req.method === 'PUT') {
    const seed = req.headers[GENERATE_SEED];
    if (typeof seed === 'string') {
      generated.set(path, { seed, size: Number(req.headers[GENERATE_SIZE]) });
      req.resume().on('end', () => res.writeHead(204).end());
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      files.set(path, Buffer.concat(chunks));
      res.writeHead(204).end();
    });
    return;
  }
  if (req.method === 'DELETE') {
    files.delete(path);
    generated.delete(path);
    res.writeHead(204).end();
    return;
  }
  const body = files.get(path);
  if (body) {
    res.writeHead(200, { 'content-length': body.length }).end(req.method === 'HEAD' ? undefined : body);
    return;
  }
  const nar = generated.get(path);
  if (nar) {
    res.writeHead(200, { 'content-length': nar.size });
    if (req.method === 'HEAD') res.end();
    else Readable.from(generatedChunks(nar.seed, nar.size), { objectMode: false }).pipe(res);
    return;
  }
  res.writeHead(404).end();
}).listen(Number(process.argv[2]), '127.0.0.1');
