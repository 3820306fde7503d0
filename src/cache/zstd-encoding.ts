import { IncomingHttpHeaders } from 'node:http';
import { Readable, pipeline } from 'node:stream';
import { CompressStream } from 'zstd-napi';

/** `<hash>.nar` without a compression extension: the NAR bytes themselves. */
export function isUncompressedNar(name: string): boolean {
  return /\.nar$/.test(name);
}

/** True when the client lists zstd in Accept-Encoding (with a non-zero q) and the NAR is uncompressed. */
export function wantsZstd(name: string, headers: IncomingHttpHeaders): boolean {
  if (!isUncompressedNar(name)) return false;
  const accepted = String(headers['accept-encoding'] ?? '')
    .split(',')
    .map((part) => part.trim().split(';'));
  return accepted.some(([coding, ...params]) => {
    if (coding.trim().toLowerCase() !== 'zstd') return false;
    const q = params.map((p) => /^\s*q=([\d.]+)\s*$/.exec(p)?.[1]).find((v) => v !== undefined);
    return q === undefined || Number(q) > 0;
  });
}

/** The source compressed with zstd; an error on either side destroys both, so the client sees a broken transfer. */
export function zstdEncode(source: Readable): Readable {
  const encoder = new CompressStream();
  return pipeline(source, encoder, () => undefined) as unknown as Readable;
}
