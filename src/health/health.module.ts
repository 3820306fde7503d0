import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { DatabaseModule } from 'src/database';
import { LockingModule } from 'src/locking';
import { StorageModule } from 'src/storage';
import { UpstreamModule } from 'src/upstream';
import { ClusterModule } from 'src/cluster';
import { HealthController } from './health.controller';
import { HealthDetailsPolicy } from './health-details.policy';
import { HealthProbe } from './health-probe.service';

@Module({
  imports: [TerminusModule.forRoot({ logger: false }), DatabaseModule, StorageModule, LockingModule, UpstreamModule, ClusterModule],
  controllers: [HealthController],
  providers: [HealthProbe, HealthDetailsPolicy],
  exports: [HealthProbe],
})
export class HealthModule {}
