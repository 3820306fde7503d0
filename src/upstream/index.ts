// Upstream caches: lookups, NAR downloads, health, priorities, keys and credentials.
export { UpstreamModule } from './upstream.module';
export { UpstreamService } from './upstream.service';
export { UpstreamHealthIndicator } from './upstream.health';
export { UpstreamUnavailableError } from './upstream.errors';
export type { UpstreamFailureReason } from './upstream.errors';
export type { NarInfoLookup, UpstreamInfo, UpstreamNarInfo } from './upstream.model';
