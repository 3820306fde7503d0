// This instance within a cluster: identity, advertise URL (and its self-check), health detail.
export { ClusterModule } from './cluster.module';
export { InstanceIdentity } from './instance-identity';
export { ClusterHealthIndicator } from './cluster.health';
export { parseOwnerRef } from './advertise-url';
