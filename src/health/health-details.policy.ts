import { Inject, Injectable } from '@nestjs/common';
import { FastifyRequest } from 'fastify';
import { matchesOneOf, presentedToken } from 'src/auth';
import { cidrMatcher } from 'src/common/cidr';
import { NCPS_CONFIG } from 'src/config/config.module';
import { NcpsConfig } from 'src/config/config';

/**
 * Who may read /health's full report (internal URLs, driver errors): a client connecting from a
 * --health-details-from range, or one presenting the get or put token. The address is the TCP
 * peer's, never a forwarded header a client could write.
 */
@Injectable()
export class HealthDetailsPolicy {
  private readonly trustedAddress: (address: string | undefined) => boolean;
  private readonly tokens: string[];

  constructor(@Inject(NCPS_CONFIG) config: NcpsConfig) {
    this.trustedAddress = cidrMatcher(config.health.detailsFrom);
    const { getToken, putToken } = config.cache;
    this.tokens = [...new Set([getToken, putToken].filter((t): t is string => Boolean(t)))];
  }

  allows(req: FastifyRequest): boolean {
    if (this.trustedAddress(req.raw.socket?.remoteAddress)) return true;
    return this.tokens.length > 0 && matchesOneOf(presentedToken(req.headers.authorization), this.tokens);
  }
}
