// PrometheusModule is imported by path (src/metrics/prometheus.module): it depends on the cache module,
// which itself records through CacheMetrics from here.
export { MetricsModule } from './metrics.module';
export { CacheMetrics, type CacheLookupKind, type CacheLookupResult, type DownloadUse } from './cache.metrics';
export { LruMetrics } from './lru.metrics';
