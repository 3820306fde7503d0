import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';
import { UpstreamUnavailableError } from './upstream.errors';
import { header, truncated, UpstreamResponse } from './upstream.exchange';

/**
 * Reads a small document (narinfo, nix-cache-info) whole, within a deadline and a size limit, so
 * that an upstream that sends headers and then stalls or streams forever cannot hold a lookup.
 * gzip, deflate and br Content-Encodings are decoded (S3-hosted caches may store narinfos compressed
 * with such a header, whatever the request asked for); others are refused.
 */
export async function readDocument(
  res: UpstreamResponse,
  label: string,
  limits: { maxBytes: number; deadlineMs: number },
): Promise<string> {
  const { body } = res;
  const timer = setTimeout(
    () => body.destroy(new UpstreamUnavailableError(`upstream ${label}: body not received within ${limits.deadlineMs} ms`, 'timeout')),
    limits.deadlineMs,
  );
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    const decode = decoderFor(header(res, 'content-encoding'), label, limits.maxBytes);
    for await (const chunk of body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > limits.maxBytes) {
        throw new UpstreamUnavailableError(`upstream ${label}: document larger than ${limits.maxBytes} bytes`, 'unsupported');
      }
      chunks.push(chunk);
    }
    if (!body.complete) throw truncated(label);
    return decode(Buffer.concat(chunks)).toString('utf8');
  } catch (error) {
    body.destroy(); // frees the connection whatever went wrong
    throw error instanceof UpstreamUnavailableError ? error : truncated(label, error);
  } finally {
    clearTimeout(timer);
  }
}

function decoderFor(encoding: string | undefined, label: string, maxOutputLength: number): (raw: Buffer) => Buffer {
  const decoder = DECODERS.get((encoding ?? 'identity').trim().toLowerCase());
  if (!decoder) {
    throw new UpstreamUnavailableError(`upstream ${label}: unsupported Content-Encoding '${encoding}'`, 'unsupported');
  }
  return (raw) => {
    try {
      return decoder(raw, { maxOutputLength });
    } catch {
      throw new UpstreamUnavailableError(`upstream ${label}: body is not valid ${encoding}, or too large`, 'unsupported');
    }
  };
}

const DECODERS = new Map<string, (raw: Buffer, options: { maxOutputLength: number }) => Buffer>([
  ['identity', (raw) => raw],
  ['', (raw) => raw],
  ['gzip', gunzipSync],
  ['x-gzip', gunzipSync],
  ['deflate', inflateSync],
  ['br', brotliDecompressSync],
]);
