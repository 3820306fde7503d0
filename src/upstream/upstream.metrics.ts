import { Counter, Histogram, Registry } from 'prom-client';

/** What an upstream request was for: the `kind` label. */
export type UpstreamRequestKind = 'narinfo' | 'nar' | 'cache_info' | 'artifact';

/**
 * Upstream request metrics. `upstream` is the configured upstream's `host[:port]` (never a URL, so no
 * credentials and a bounded set of values), also when a request was redirected elsewhere. Each HTTP
 * exchange counts, retries and redirects included; `status` is the HTTP status, or `timeout`/`error`
 * when no answer came.
 */
export class UpstreamMetrics {
  private readonly requests: Counter<'upstream' | 'kind' | 'status'>;
  private readonly duration: Histogram<'upstream' | 'kind'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.requests = new Counter({
      name: 'ncps_upstream_requests_total',
      help: 'Requests to upstream caches by upstream host, kind (narinfo, nar, cache_info, artifact) and status (HTTP code, timeout, error)',
      labelNames: ['upstream', 'kind', 'status'],
      registers,
    });
    this.duration = new Histogram({
      name: 'ncps_upstream_request_duration_seconds',
      help: 'Time from sending an upstream request to receiving its response headers, by upstream host and kind',
      labelNames: ['upstream', 'kind'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
  }

  /** A response arrived: its status, and how long its headers took (requests that failed have no duration). */
  answered(upstream: string, kind: UpstreamRequestKind, status: number, seconds: number): void {
    this.requests.inc({ upstream, kind, status: String(status) });
    this.duration.observe({ upstream, kind }, seconds);
  }

  failed(upstream: string, kind: UpstreamRequestKind, outcome: 'timeout' | 'error'): void {
    this.requests.inc({ upstream, kind, status: outcome });
  }
}
