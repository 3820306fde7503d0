// The Prometheus registry (MetricsModule), GET /metrics and the HTTP metrics (PrometheusModule), and
// how a route says where a body it sends comes from. Each domain owns its other metrics.
export { MetricsModule } from './metrics.module';
export { PrometheusModule } from './prometheus.module';
export { markServedSource, type ServedSource } from './served-source';
