import { CanActivate, ExecutionContext, Inject, Injectable } from '@nestjs/common';
import { timingSafeEqual } from 'node:crypto';
import { FastifyRequest } from 'fastify';
import { NCPS_CONFIG } from 'src/config/config.module';
import { NcpsConfig } from 'src/config/config';
import { UnauthorizedError } from 'src/common/errors';

/**
 * With --cache-get-token, reads (GET/HEAD) need `Authorization: Bearer <token>`. Basic auth with the
 * token as password is accepted too, so Nix clients can send it from a netrc file.
 */
@Injectable()
export class GetTokenGuard implements CanActivate {
  constructor(@Inject(NCPS_CONFIG) private readonly config: NcpsConfig) {}

  canActivate(context: ExecutionContext): boolean {
    const token = this.config.cache.getToken;
    const req = context.switchToHttp().getRequest<FastifyRequest>();
    if (!token || (req.method !== 'GET' && req.method !== 'HEAD')) return true;
    if (!presentedToken(req.headers.authorization).some((t) => sameSecret(t, token))) {
      throw new UnauthorizedError('a valid token is required');
    }
    return true;
  }
}

function presentedToken(header: string | undefined): string[] {
  if (!header) return [];
  const [scheme, value = ''] = header.split(' ', 2);
  if (scheme.toLowerCase() === 'bearer') return [value];
  if (scheme.toLowerCase() === 'basic') {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    return [decoded.slice(decoded.indexOf(':') + 1)];
  }
  return [];
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
