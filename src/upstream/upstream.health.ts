import { Injectable } from '@nestjs/common';
import { HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import { UpstreamService } from './upstream.service';

/**
 * /health detail for the upstreams, from the last periodic check (no probe per /health request).
 * Always up: upstreams are not required to serve what is cached, and failing /health when a shared
 * upstream is down would make a load balancer drop every instance, turning an upstream outage into
 * a full one. The detail says which upstreams are unhealthy (and why) and which are unverified.
 */
@Injectable()
export class UpstreamHealthIndicator {
  constructor(
    private readonly upstreams: UpstreamService,
    private readonly health: HealthIndicatorService,
  ) {}

  async check(): Promise<HealthIndicatorResult> {
    const upstreams = this.upstreams.list();
    return this.health.check('upstreams').up({
      healthy: upstreams.filter((upstream) => upstream.healthy).length,
      total: upstreams.length,
      unverified: upstreams.filter((upstream) => !upstream.verified).map((upstream) => upstream.url),
      upstreams: upstreams.map(({ url, priority, healthy, reason, retryAfter }) => ({ url, priority, healthy, reason, retryAfter })),
    });
  }
}
