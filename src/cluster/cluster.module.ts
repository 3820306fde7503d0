import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { AdvertiseCheck } from './advertise-check';
import { ClusterHealthIndicator } from './cluster.health';
import { InstanceController } from './instance.controller';
import { InstanceIdentity } from './instance-identity';

/** This instance within a cluster: its id, its advertise URL and the check that the URL reaches it. */
@Module({
  imports: [TerminusModule],
  controllers: [InstanceController],
  providers: [InstanceIdentity, AdvertiseCheck, ClusterHealthIndicator],
  exports: [InstanceIdentity, ClusterHealthIndicator],
})
export class ClusterModule {}
