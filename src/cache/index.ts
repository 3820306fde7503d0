// The public surface of the cache domain for other domains.
export { CacheMetrics } from './cache.metrics';
