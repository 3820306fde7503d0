import { Injectable } from '@nestjs/common';
import { HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import { ADVERTISE_FIX, AdvertiseCheck } from './advertise-check';
import { InstanceIdentity } from './instance-identity';

/**
 * /health detail `cluster`: this instance's id, its advertise URL and whether that URL reaches it.
 * Always up: a wrong advertise URL costs the other instances' clients the streaming of downloads
 * running here (they wait for the download to finish instead), while this instance serves everything
 * correctly. Failing /health for it would let a load balancer drop every instance of a cluster that
 * shares the mistake, turning a slowdown into an outage; the detail and the error log say it instead.
 */
@Injectable()
export class ClusterHealthIndicator {
  constructor(
    private readonly identity: InstanceIdentity,
    private readonly check: AdvertiseCheck,
    private readonly health: HealthIndicatorService,
  ) {}

  report(): HealthIndicatorResult {
    const { state, ...rest } = this.check.state;
    return this.health.check('cluster').up({
      instance: this.identity.id,
      advertiseUrl: this.identity.advertiseUrl,
      advertiseCheck: state,
      ...rest,
      ...(state === 'failed' ? { fix: ADVERTISE_FIX } : {}),
    });
  }
}
