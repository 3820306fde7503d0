import { CanActivate, ExecutionContext, Inject, Injectable } from '@nestjs/common';
import { createHash, timingSafeEqual } from 'node:crypto';
import { FastifyRequest } from 'fastify';
import { NCPS_CONFIG } from 'src/config/config.module';
import { NcpsConfig } from 'src/config/config';
import { UnauthorizedError } from 'src/common/errors';

const READ_METHODS = new Set(['GET', 'HEAD']);

/**
 * The tokens a request must present one of: reads need the get token (or the put token: whoever may
 * write may read, and `nix copy` reads before it writes with the one password of its netrc); every
 * other method is a write and needs the put token (which the config already defaults to the get
 * token). An empty list means the route is open.
 */
export function acceptedTokens(method: string, cache: Pick<NcpsConfig['cache'], 'getToken' | 'putToken'>): string[] {
  if (READ_METHODS.has(method)) return cache.getToken ? [cache.getToken, cache.putToken ?? cache.getToken] : [];
  return cache.putToken ? [cache.putToken] : [];
}

/**
 * The token in an Authorization header: `Bearer <token>`, or `Basic base64(<user>:<token>)` as Nix sends
 * from a netrc file (the user name is ignored). Undefined when absent or malformed.
 */
export function presentedToken(header: string | undefined): string | undefined {
  const match = /^\s*(\S+)\s+(\S+)\s*$/.exec(header ?? '');
  if (!match) return undefined;
  const scheme = match[1].toLowerCase();
  if (scheme === 'bearer') return match[2];
  if (scheme !== 'basic') return undefined;
  const decoded = Buffer.from(match[2], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? undefined : decoded.slice(colon + 1);
}

const digest = (secret: string): Buffer => createHash('sha256').update(secret).digest();

/**
 * Whether `presented` equals one of `accepted`, in time that depends on neither the values nor their
 * lengths: equal-length SHA-256 digests are compared with timingSafeEqual, and every candidate is checked.
 */
export function matchesOneOf(presented: string | undefined, accepted: readonly string[]): boolean {
  return matchesOneDigestOf(presented, accepted.map(digest));
}

function matchesOneDigestOf(presented: string | undefined, accepted: readonly Buffer[]): boolean {
  if (presented === undefined) return false;
  const mine = digest(presented);
  return accepted.reduce((found, token) => timingSafeEqual(mine, token) || found, false);
}

/**
 * The token check of every route, with the configured tokens digested once: reads with the get token,
 * writes (PUT, DELETE) with the put token. Used by TokenGuard and by the routes served straight by
 * Fastify (see src/cache/hot-routes.ts).
 */
export class AccessTokens {
  private readonly reads: Buffer[];
  private readonly writes: Buffer[];

  constructor(cache: Pick<NcpsConfig['cache'], 'getToken' | 'putToken'>) {
    this.reads = acceptedTokens('GET', cache).map(digest);
    this.writes = acceptedTokens('PUT', cache).map(digest);
  }

  /** Throws UnauthorizedError unless the Authorization header carries a token accepted for `method`. */
  check(method: string, authorization: string | undefined): void {
    const read = READ_METHODS.has(method);
    const accepted = read ? this.reads : this.writes;
    if (accepted.length > 0 && !matchesOneDigestOf(presentedToken(authorization), accepted)) {
      throw new UnauthorizedError(read ? 'a valid token is required' : 'a valid put token is required to write');
    }
  }
}

/**
 * Authenticates every request of a controller by its method (see AccessTokens). Listed first in
 * @UseGuards, so an unauthenticated write is answered 401 before anything else, a disabled verb
 * included: who has no token learns nothing about the cache.
 */
@Injectable()
export class TokenGuard implements CanActivate {
  private readonly tokens: AccessTokens;

  constructor(@Inject(NCPS_CONFIG) config: NcpsConfig) {
    this.tokens = new AccessTokens(config.cache);
  }

  canActivate(context: ExecutionContext): boolean {
    const req = context.switchToHttp().getRequest<FastifyRequest>();
    this.tokens.check(req.method, req.headers.authorization);
    return true;
  }
}
