import { CanActivate, Controller, HttpCode, Inject, Injectable, Post, Query, Req, UseGuards } from '@nestjs/common';
import { FastifyRequest } from 'fastify';
import { Readable } from 'node:stream';
import { TokenGuard } from 'src/auth';
import { BadRequestError, MethodNotAllowedError, PayloadTooLargeError } from 'src/common/errors';
import { NcpsConfig } from 'src/config/config';
import { NCPS_CONFIG } from 'src/config/config.module';
import { parseWarmTargets, warmLines } from './warm-input';
import { DEFAULT_WARM_CONCURRENCY, MAX_WARM_CONCURRENCY, WarmService } from './warm.service';

/** Largest body accepted: some 90 000 store paths, far more than a system's closure. */
const MAX_WARM_BODY_BYTES = 4 * 1024 * 1024;
/** Invalid entries named in a 400, at most. */
const SHOWN_INVALID = 5;

/**
 * One request makes the server fetch whole closures, so warming over HTTP is never open to anonymous
 * clients: it needs a put token to be configured (and presented: TokenGuard).
 */
@Injectable()
class WarmNeedsAToken implements CanActivate {
  constructor(@Inject(NCPS_CONFIG) private readonly config: NcpsConfig) {}

  canActivate(): boolean {
    if (!this.config.cache.putToken) {
      throw new MethodNotAllowedError('warming over HTTP needs a put token (--cache-put-token or --cache-get-token)');
    }
    return true;
  }
}

/**
 * `POST /warm` (put token): the body is a JSON list of store paths or hashes (Content-Type
 * application/json) or the same as text, one per line. Answers 202 with the id of the warm run,
 * which goes on in the background (progress in /metrics, its end in the log). `?concurrency=N`
 * paths at once (default 8). A static route: no clash with the cache's `/:name` routes, which
 * answer other methods.
 */
@Controller('warm')
@UseGuards(TokenGuard, WarmNeedsAToken)
export class WarmController {
  constructor(private readonly warm: WarmService) {}

  @Post()
  @HttpCode(202)
  async start(@Req() req: FastifyRequest, @Query('concurrency') concurrency?: string): Promise<{ id: string; paths: number }> {
    const parallel = parseConcurrency(concurrency);
    if (Number(req.headers['content-length'] ?? 0) > MAX_WARM_BODY_BYTES)
      throw new PayloadTooLargeError(`body larger than ${MAX_WARM_BODY_BYTES} bytes`);
    const text = await readLimited(req.body as Readable, MAX_WARM_BODY_BYTES);
    const targets = parseWarmTargets(entriesOf(text, req.headers['content-type']));
    if (targets.invalid.length > 0) {
      const shown = targets.invalid.slice(0, SHOWN_INVALID).map(({ entry }) => JSON.stringify(entry.slice(0, 100)));
      const more = targets.invalid.length > SHOWN_INVALID ? ` and ${targets.invalid.length - SHOWN_INVALID} more` : '';
      throw new BadRequestError(`neither a store path nor a store path hash: ${shown.join(', ')}${more}`);
    }
    if (targets.hashes.length === 0) throw new BadRequestError('no store paths to warm');
    return { id: this.warm.startInBackground(targets, parallel), paths: targets.hashes.length };
  }
}

function parseConcurrency(text: string | undefined): number {
  if (text === undefined) return DEFAULT_WARM_CONCURRENCY;
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < 1 || value > MAX_WARM_CONCURRENCY) {
    throw new BadRequestError(`concurrency must be a whole number from 1 to ${MAX_WARM_CONCURRENCY}`);
  }
  return value;
}

/** A JSON body must be a list of strings; any other body is read as lines. */
function entriesOf(text: string, contentType: string | undefined): string[] {
  if (!/^application\/json\b/i.test(contentType ?? '')) return warmLines(text);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new BadRequestError('invalid JSON');
  }
  if (!Array.isArray(parsed) || !parsed.every((entry): entry is string => typeof entry === 'string')) {
    throw new BadRequestError('expected a JSON list of store paths or hashes');
  }
  return parsed;
}

async function readLimited(body: Readable, maxBytes: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  // Stops reading without destroying the request: the 413 is still sent, then the connection closed.
  for await (const chunk of body.iterator({ destroyOnReturn: false })) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) throw new PayloadTooLargeError(`body larger than ${maxBytes} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
