import { Readable } from 'node:stream';
import { version } from '../../package.json';
import { readDocument } from './upstream.body';
import { UpstreamUnavailableError } from './upstream.errors';
import { exchange, ExchangeLimits, header, toUpstreamError, UpstreamResponse } from './upstream.exchange';
import { UpstreamMetrics, UpstreamRequestKind } from './upstream.metrics';
import { mayFetch, mayRedirect } from './upstream.origins';
import { PoolKind, UpstreamPools } from './upstream.pool';
import { DEFAULT_MAX_CONNECTIONS, NoProxy } from 'src/net';
import { ProxySettings } from './upstream.proxy';
import { parseRetryAfter, RETRY_AFTER_STATUSES } from './upstream.retry-after';
import type { Tracing } from 'src/telemetry';
import { retry } from 'src/common/retry';

const USER_AGENT = `ncps/${version}`;

export interface UpstreamHttpOptions {
  /** Time to resolve the host and open the TCP connection (`--cache-upstream-dialer-timeout`). */
  dialTimeoutMs: number;
  /**
   * Time from the connection (a reused one: from sending) to the response headers, TLS handshake
   * included (`--cache-upstream-response-header-timeout`). Also the deadline for a small document's body.
   */
  headerTimeoutMs: number;
  /** A NAR body that receives nothing for this long, while its reader wants more, fails. */
  bodyIdleTimeoutMs: number;
  /** The Authorization header for a request URL (see credentialsFor): asked again for every redirect. */
  authorization: (url: URL) => string | undefined;
  /** Origins besides the upstream's own that a request (its URL or a redirect) may go to. */
  allowedOrigins: ReadonlySet<string>;
  metrics: UpstreamMetrics;
  /** Forward proxies (HTTP_PROXY, HTTPS_PROXY, NO_PROXY); default none. */
  proxies?: ProxySettings;
  /** Extra CAs (PEM) trusted for https upstreams besides the bundled ones. */
  ca?: Buffer[];
  /** Most connections per pool to an origin (the upstream's `?max-connections=`); default DEFAULT_MAX_CONNECTIONS. */
  maxConnections?: (origin: string) => number;
  /** Each exchange is a client span, its trace context sent as `traceparent` (default: not traced). */
  tracing?: Tracing;
}

/** A small document's answer; `retryAfterMs` when a 429 or 503 asked to wait (Retry-After). */
export interface UpstreamDocument {
  status: number;
  text?: string;
  retryAfterMs?: number;
}

/** Who a request is for: the metrics label and message name (`host[:port]` of the configured upstream), and its kind. */
export interface RequestContext {
  label: string;
  kind: UpstreamRequestKind;
  /** The configured upstream's origin (undefined: none): where the request and its redirects may go besides the allowed origins. */
  origin: string | undefined;
}

const NO_ENCODINGS: ReadonlySet<string> = new Set();
/** A narinfo with 10,000 references is ~600 KB; nothing legitimate comes close to this. */
const MAX_DOCUMENT_BYTES = 4 * 1024 * 1024;
const MAX_REDIRECTS = 5;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
/** Waits before the two retries: short, since a reset keep-alive connection is simply replaced; a real blip gets a moment. */
const RETRY_DELAYS_MS = [50, 200];
/**
 * Transport errors worth one more try: a connection reset or broken (typically a keep-alive connection
 * the upstream closed while idle) or a temporary DNS failure. ECONNREFUSED is not retried: nothing is
 * listening, a retry within milliseconds would see the same, and it only delays the lookup's answer.
 * Timeouts are not retried either: each already cost its full budget.
 */
const TRANSIENT_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'EAI_AGAIN']);

/**
 * GETs from upstream caches over keep-alive connections (pooled per origin, capped, through a forward
 * proxy when one applies: see UpstreamPools), with the dial and response-header timeouts,
 * retries of transient transport errors (only while nothing has been handed to the caller), redirects
 * (as Nix's curl and Go's client follow them, but only within the upstream's origin and the allowed
 * origins, never from https to http; credentials go to an origin only when they are its own), and metrics. Upstream bodies are never buffered except small documents.
 */
export class UpstreamHttpClient {
  private readonly pools: UpstreamPools;

  constructor(private readonly options: UpstreamHttpOptions) {
    this.pools = new UpstreamPools({
      proxies: options.proxies ?? { noProxy: new NoProxy([]) },
      ca: options.ca,
      maxConnections: options.maxConnections ?? (() => DEFAULT_MAX_CONNECTIONS),
      dialTimeoutMs: options.dialTimeoutMs,
      tunnelTimeoutMs: options.dialTimeoutMs + options.headerTimeoutMs,
    });
  }

  /**
   * A small document: its status, its text when the status is 200, and how long a 429 or 503 asked
   * to wait. Throws UpstreamUnavailableError.
   */
  async getDocument(url: URL, context: RequestContext): Promise<UpstreamDocument> {
    return this.withRetries(true, async () => {
      const res = await this.follow(url, context, 'document');
      const { status } = res;
      if (status !== 200) {
        res.body.resume();
        const retryAfterMs = RETRY_AFTER_STATUSES.has(status) ? parseRetryAfter(header(res, 'retry-after'), Date.now()) : undefined;
        return retryAfterMs === undefined ? { status } : { status, retryAfterMs };
      }
      const limits = { maxBytes: MAX_DOCUMENT_BYTES, deadlineMs: this.options.headerTimeoutMs };
      return { status: 200, text: await readDocument(res, context.label, limits) };
    });
  }

  /**
   * A body to stream: resolves once 200 headers arrived, with a body that errors rather than ends
   * short. Any other status, and transport failures, throw UpstreamUnavailableError.
   */
  async getStream(
    url: URL,
    context: RequestContext,
    /** Content-Encodings passed on as they are (the caller stores the bytes encoded); any other fails. */
    encodings: ReadonlySet<string> = NO_ENCODINGS,
  ): Promise<{ body: Readable; contentLength?: number; contentEncoding?: string }> {
    const res = await this.withRetries(false, () => this.follow(url, context, 'stream'));
    const { status } = res;
    if (status !== 200) {
      res.body.resume();
      const error = new UpstreamUnavailableError(
        `upstream ${context.label} answered HTTP ${status} for a ${context.kind}`,
        'status',
        status,
      );
      if (RETRY_AFTER_STATUSES.has(status)) error.retryAfterMs = parseRetryAfter(header(res, 'retry-after'), Date.now());
      throw error;
    }
    const encoding = header(res, 'content-encoding')?.trim().toLowerCase();
    const passed = encoding !== undefined && encodings.has(encoding) ? encoding : undefined;
    if (encoding !== undefined && encoding !== 'identity' && passed === undefined) {
      res.body.destroy();
      throw new UpstreamUnavailableError(`upstream ${context.label}: unsupported Content-Encoding '${encoding}'`, 'unsupported');
    }
    const length = header(res, 'content-length');
    const contentLength = length !== undefined && /^[0-9]+$/.test(length) ? Number(length) : undefined;
    const answer: { body: Readable; contentLength?: number; contentEncoding?: string } = { body: res.body };
    if (contentLength !== undefined) answer.contentLength = contentLength;
    if (passed !== undefined) answer.contentEncoding = passed;
    return answer;
  }

  /** Closes idle keep-alive connections and fails requests still running. */
  close(): void {
    this.pools.destroy();
  }

  /** `documents`: a body cut short is retried too, since a document is read whole before it is returned. */
  private withRetries<T>(documents: boolean, run: () => Promise<T>): Promise<T> {
    return retry(run, {
      attempts: RETRY_DELAYS_MS.length + 1,
      retryable: (error) =>
        error instanceof UpstreamUnavailableError &&
        ((error.code !== undefined && TRANSIENT_CODES.has(error.code)) || (documents && error.reason === 'truncated')),
      delayMs: (attempt) => RETRY_DELAYS_MS[attempt - 1],
    });
  }

  /** Nothing is sent to a URL outside the allowed origins: the request, or the redirect leading there, fails first. */
  private async follow(url: URL, context: RequestContext, pool: PoolKind): Promise<UpstreamResponse> {
    const { allowedOrigins } = this.options;
    if (!mayFetch(url, context.origin, allowedOrigins)) {
      throw new UpstreamUnavailableError(`upstream ${context.label}: ${url.origin} is not an allowed origin`, 'refused');
    }
    for (let hops = 0; ; hops++) {
      const res = await this.send(url, context, pool);
      const location = header(res, 'location');
      if (!REDIRECT_STATUSES.has(res.status) || location === undefined) return res;
      res.body.resume();
      const next = URL.canParse(location, url.href) ? new URL(location, url) : null;
      if (hops >= MAX_REDIRECTS || !next || (next.protocol !== 'http:' && next.protocol !== 'https:')) {
        throw new UpstreamUnavailableError(`upstream ${context.label}: unusable redirect`, 'unsupported');
      }
      if (!mayRedirect(url, next, context.origin, allowedOrigins)) {
        // The origin names a host and port, never credentials; the path could carry a signed query, so it is left out.
        throw new UpstreamUnavailableError(
          `upstream ${context.label}: redirect to ${next.origin} refused (not the upstream's origin nor an allowed one, or https to http)`,
          'refused',
        );
      }
      url = next;
    }
  }

  /**
   * One exchange, up to the response headers, under the dial and header timeouts (through a proxy,
   * the dial budget also covers the CONNECT and the TLS handshake). It first takes a connection slot
   * of its pool (UpstreamPools.acquire), held until the response is read or dropped. A NAR download
   * waits for one as long as it takes (the downloads ahead of it progress or time out on their own);
   * anything a client is waiting on more directly (a narinfo, an artifact) at most the dial timeout.
   */
  private async send(url: URL, context: RequestContext, pool: PoolKind): Promise<UpstreamResponse> {
    const { headerTimeoutMs, metrics } = this.options;
    const release = await this.pools
      .acquire(url, pool, context.label, context.kind === 'nar' ? undefined : this.options.dialTimeoutMs)
      .catch((error: UpstreamUnavailableError) => {
        metrics.failed(context.label, context.kind, 'timeout');
        throw error;
      });
    const headers: Record<string, string> = { 'user-agent': USER_AGENT, 'accept-encoding': 'identity' };
    const authorization = this.options.authorization(url);
    if (authorization !== undefined) headers.authorization = authorization;
    // Tracing on: a client span whose traceparent goes out in `headers`. Off: nothing is evaluated.
    const span = this.options.tracing?.outgoing(`GET ${context.kind}`, 'GET', url, headers, {
      'ncps.upstream': context.label,
      'ncps.upstream.kind': context.kind,
    });
    const { dispatcher, request } = this.pools.route(url, pool, headers, authorization !== undefined);
    const limits = this.limits(context.label);
    // A small document has its own deadline for the whole body (readDocument); a NAR one for silence.
    const timeouts = { headersTimeout: headerTimeoutMs, bodyTimeout: pool === 'stream' ? this.options.bodyIdleTimeoutMs : 0 };
    const received = pool === 'stream' ? metrics.bodyCounter(context.label, context.kind) : noCount;
    const started = performance.now();
    try {
      const res = await exchange(dispatcher, { ...request, ...timeouts }, limits, received, release);
      metrics.answered(context.label, context.kind, res.status, (performance.now() - started) / 1000);
      span?.answered(res.status, res.body);
      return res;
    } catch (error) {
      const failure = toUpstreamError(error as Error, limits, false);
      metrics.failed(context.label, context.kind, failure.reason === 'timeout' ? 'timeout' : 'error');
      span?.failed(failure);
      throw failure;
    }
  }

  private limits(label: string): ExchangeLimits {
    const { dialTimeoutMs, headerTimeoutMs, bodyIdleTimeoutMs } = this.options;
    return { label, dialTimeoutMs, headerTimeoutMs, bodyIdleTimeoutMs };
  }
}

const noCount = (): void => undefined;
