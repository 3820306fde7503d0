import { Counter, Histogram, Registry } from 'prom-client';

/** What an upstream request was for: the `kind` label. */
export type UpstreamRequestKind = 'narinfo' | 'nar' | 'cache_info' | 'artifact';
/** One upstream's answer to a narinfo lookup: it had it, said 403/404/410, or failed (any other status, no answer, unusable). */
export type NarInfoLookupResult = 'hit' | 'not_found' | 'error';

const LOOKUP_RESULTS: readonly NarInfoLookupResult[] = ['hit', 'not_found', 'error'];
/** The kinds whose bodies are streamed (getStream), counted in ncps_upstream_fetched_bytes_total. */
const STREAMED_KINDS: readonly UpstreamRequestKind[] = ['nar', 'artifact'];

/**
 * Upstream request metrics. `upstream` is the configured upstream's `host[:port]` (never a URL, so no
 * credentials and a bounded set of values), also when a request was redirected elsewhere. Each HTTP
 * exchange counts, retries and redirects included; `status` is the HTTP status, or `timeout`/`error`
 * when no answer came. Besides the exchanges: each upstream's answers to narinfo lookups, and the
 * body bytes received from it. The series of the configured upstreams (`hosts`) start at 0.
 */
export class UpstreamMetrics {
  private readonly requests: Counter<'upstream' | 'kind' | 'status'>;
  private readonly duration: Histogram<'upstream' | 'kind'>;
  private readonly lookups: Counter<'upstream' | 'result'>;
  private readonly bytes: Counter<'upstream' | 'kind'>;

  constructor(registry: Registry, hosts: readonly string[] = []) {
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
    this.lookups = new Counter({
      name: 'ncps_upstream_narinfo_lookups_total',
      help: 'Narinfo lookups by upstream host and result: hit (it had it), not_found (403, 404, 410), error (anything else)',
      labelNames: ['upstream', 'result'],
      registers,
    });
    this.bytes = new Counter({
      name: 'ncps_upstream_fetched_bytes_total',
      help: 'Body bytes received from upstream caches, by upstream host and kind (nar, artifact); failed and rejected downloads included',
      labelNames: ['upstream', 'kind'],
      registers,
    });
    for (const upstream of new Set(hosts)) {
      for (const result of LOOKUP_RESULTS) this.lookups.inc({ upstream, result }, 0);
      for (const kind of STREAMED_KINDS) this.bytes.inc({ upstream, kind }, 0);
    }
  }

  /** A response arrived: its status, and how long its headers took (requests that failed have no duration). */
  answered(upstream: string, kind: UpstreamRequestKind, status: number, seconds: number): void {
    this.requests.inc({ upstream, kind, status: String(status) });
    this.duration.observe({ upstream, kind }, seconds);
  }

  failed(upstream: string, kind: UpstreamRequestKind, outcome: 'timeout' | 'error'): void {
    this.requests.inc({ upstream, kind, status: outcome });
  }

  narInfoLookup(upstream: string, result: NarInfoLookupResult): void {
    this.lookups.inc({ upstream, result });
  }

  /** Counts the body bytes of one response as they arrive (its label child bound once). */
  bodyCounter(upstream: string, kind: UpstreamRequestKind): (bytes: number) => void {
    const child = this.bytes.labels({ upstream, kind });
    return (bytes) => child.inc(bytes);
  }
}
