// The public surface of the cache domain for other domains.
export { AccessTokens, TokenGuard } from './token.guard';
export { CacheMetrics } from './cache.metrics';
