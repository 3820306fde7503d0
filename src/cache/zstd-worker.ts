/**
 * The zstd encoder thread, as plain JavaScript run with `new Worker(source, { eval: true })`: a
 * worker loads JavaScript, and a string works the same under Jest (TypeScript compiled in memory)
 * and from dist/. It holds one zstd context per stream and answers every message about a stream
 * with one message: the compressed bytes of that input (possibly none), so the main thread pushes
 * them before it asks for more input — that is what carries backpressure across the thread.
 *
 * Messages in:  { id, type: 'open' | 'write' | 'end' | 'abort', chunk?: Uint8Array }
 * Messages out: { id, type: 'data' | 'end' | 'error', chunk?: Uint8Array, message?: string }
 */
export const ZSTD_WORKER_SOURCE = `
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const { CCtx, EndDirective } = require(workerData.bindingPath);
const OUT_SIZE = 128 * 1024;
const contexts = new Map();

function compress(cctx, input, directive) {
  const parts = [];
  let total = 0;
  for (;;) {
    const out = new Uint8Array(OUT_SIZE);
    const [remaining, produced, consumed] = cctx.compressStream2(out, input, directive);
    if (produced > 0) {
      parts.push(out.subarray(0, produced));
      total += produced;
    }
    input = input.subarray(consumed);
    if (input.length === 0 && (directive === EndDirective.continue || remaining === 0)) break;
  }
  if (parts.length === 1) return parts[0];
  const joined = new Uint8Array(total);
  let at = 0;
  for (const part of parts) {
    joined.set(part, at);
    at += part.length;
  }
  return joined;
}

function reply(id, type, chunk) {
  parentPort.postMessage({ id, type, chunk }, [chunk.buffer]);
}

parentPort.on('message', ({ id, type, chunk }) => {
  try {
    if (type === 'open') {
      contexts.set(id, new CCtx());
    } else if (type === 'abort') {
      contexts.delete(id);
    } else {
      const cctx = contexts.get(id);
      if (!cctx) return;
      const last = type === 'end';
      const out = compress(cctx, last ? new Uint8Array(0) : chunk, last ? EndDirective.end : EndDirective.continue);
      if (last) contexts.delete(id);
      reply(id, last ? 'end' : 'data', out);
    }
  } catch (e) {
    contexts.delete(id);
    parentPort.postMessage({ id, type: 'error', message: String((e && e.message) || e) });
  }
});
`;
