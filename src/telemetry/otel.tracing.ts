import {
  Context,
  ROOT_CONTEXT,
  Span,
  SpanKind,
  SpanStatusCode,
  Tracer,
  defaultTextMapGetter,
  defaultTextMapSetter,
  trace,
} from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import {
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_SERVICE_NAME,
  ATTR_SERVICE_VERSION,
  ATTR_URL_FULL,
} from '@opentelemetry/semantic-conventions';
import type { OutgoingHttpHeaders } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { version } from '../../package.json';
import { waitAtMost } from 'src/common/deadline';
import { traceRequests } from './otel.requests';
import { ActiveSpan, ClientSpan, NO_CLIENT_SPAN, SpanAttributes, Tracing, WhenHeld } from './tracing';

/** How long shutdown waits for spans still running, then for the collector to take the last ones. */
const SHUTDOWN_WAIT_MS = 5000;

export interface OtelTracingOptions {
  /** OTLP/HTTP base URL (`--otel-endpoint`); undefined: the exporter's own (OTEL_EXPORTER_OTLP_*), as the SDK reads it. */
  endpoint?: string;
}

/**
 * Tracing with the OpenTelemetry SDK: spans batched and sent as OTLP/HTTP JSON. Nothing is
 * registered globally (no global provider, context manager or propagator): the context lives in
 * this instance's AsyncLocalStorage, so two applications in one process (tests) do not mix, and
 * shutting one down leaves nothing behind. The sampler, resource attributes, export headers and
 * batching follow the standard OTEL_* variables, read by the SDK itself.
 */
export class OtelTracing extends Tracing {
  readonly enabled = true;
  private readonly contexts = new AsyncLocalStorageContextManager().enable();
  private readonly propagator = new W3CTraceContextPropagator();
  private readonly provider: BasicTracerProvider;
  private readonly tracer: Tracer;
  /** Spans of span() still running, and who waits for them to end (shutdown). */
  private running = 0;
  private allEnded?: () => void;

  constructor(options: OtelTracingOptions) {
    super();
    const url = options.endpoint === undefined ? undefined : `${options.endpoint.replace(/\/+$/, '')}/v1/traces`;
    const resource = defaultResource()
      .merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: 'ncps', [ATTR_SERVICE_VERSION]: version }))
      // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win over our own names.
      .merge(detectResources({ detectors: [envDetector] }));
    this.provider = new BasicTracerProvider({
      resource,
      spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter(url === undefined ? {} : { url }))],
    });
    this.tracer = this.provider.getTracer('ncps', version);
  }

  span<T>(name: string, fn: (span: ActiveSpan) => Promise<T>, attributes?: SpanAttributes): Promise<T> {
    const parent = this.contexts.active();
    const span = this.tracer.startSpan(name, { attributes: defined(attributes) }, parent);
    const handle: ActiveSpan = { setAttributes: (more) => span.setAttributes(defined(more) ?? {}) };
    this.running++;
    return this.contexts.with(trace.setSpan(parent, span), () => settle(span, () => fn(handle))).finally(this.ended);
  }

  private readonly ended = (): void => {
    if (--this.running === 0) this.allEnded?.();
  };

  waiting<T>(name: string, attributes: SpanAttributes, acquire: (held: WhenHeld) => Promise<T>): Promise<T> {
    const parent = this.contexts.active();
    const span = this.tracer.startSpan(name, { attributes: defined(attributes) }, parent);
    let waited = false;
    const held: WhenHeld = (fn) => {
      waited = true;
      span.end();
      return this.contexts.with(parent, fn);
    };
    return this.contexts.with(trace.setSpan(parent, span), async () => {
      try {
        return await acquire(held);
      } catch (error) {
        if (!waited) fail(span, error);
        throw error;
      } finally {
        if (!waited) {
          // Gave up without holding it (tryWithLock found it taken): a wait that ended without the lock.
          span.setAttribute('ncps.lock.acquired', false);
          span.end();
        }
      }
    });
  }

  outgoing(name: string, method: string, url: URL, headers: OutgoingHttpHeaders, attributes?: SpanAttributes): ClientSpan {
    const parent = this.contexts.active();
    if (trace.getSpan(parent) === undefined) return NO_CLIENT_SPAN;
    const port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port);
    const span = this.tracer.startSpan(
      name,
      {
        kind: SpanKind.CLIENT,
        attributes: defined({
          [ATTR_HTTP_REQUEST_METHOD]: method,
          // Origin and path only: a query may carry a signature, and credentials never go in a span.
          [ATTR_URL_FULL]: `${url.origin}${url.pathname}`,
          [ATTR_SERVER_ADDRESS]: url.hostname,
          [ATTR_SERVER_PORT]: port,
          ...attributes,
        }),
      },
      parent,
    );
    this.propagator.inject(trace.setSpan(parent, span), headers, defaultTextMapSetter);
    return {
      answered: (status, body) => {
        span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, status);
        if (status >= 400) {
          span.setAttribute(ATTR_ERROR_TYPE, String(status));
          span.setStatus({ code: SpanStatusCode.ERROR });
        }
        body.once('close', () => span.end());
      },
      failed: (error) => {
        fail(span, error);
        span.end();
      },
    };
  }

  logFields(): { trace_id: string; span_id: string } | undefined {
    const context = trace.getSpanContext(this.contexts.active());
    return context ? { trace_id: context.traceId, span_id: context.spanId } : undefined;
  }

  traceRequests(fastify: FastifyInstance): void {
    traceRequests(fastify, {
      tracer: this.tracer,
      extract: (headers) => this.propagator.extract(ROOT_CONTEXT, headers, defaultTextMapGetter),
      run: (context: Context, fn: () => void) => this.contexts.with(context, fn),
    });
  }

  async shutdown(): Promise<void> {
    // Work that outlives the last response (a download's commit and lock release, after the download
    // registry saw it done) ends its spans a moment later: they are sent too, within a bound.
    if (this.running > 0) await waitAtMost(new Promise<void>((resolve) => (this.allEnded = resolve)), SHUTDOWN_WAIT_MS);
    try {
      // A collector that is down or slow never holds up the exit for long: what is not sent by then is lost.
      await waitAtMost(this.provider.shutdown(), SHUTDOWN_WAIT_MS);
    } finally {
      this.contexts.disable();
    }
  }
}

/** OpenTelemetry rejects undefined attribute values: they are left out. */
function defined(attributes: SpanAttributes | undefined): Record<string, string | number | boolean> | undefined {
  if (!attributes) return undefined;
  const out: Record<string, string | number | boolean> = {};
  for (const [key, value] of Object.entries(attributes)) if (value !== undefined) out[key] = value;
  return out;
}

async function settle<T>(span: Span, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    fail(span, error);
    throw error;
  } finally {
    span.end();
  }
}

/** Marks `span` failed by `error` (its caller ends it). */
export function fail(span: Span, error: unknown): void {
  const err = error instanceof Error ? error : new Error(String(error));
  span.recordException(err);
  span.setAttribute(ATTR_ERROR_TYPE, err.name);
  span.setStatus({ code: SpanStatusCode.ERROR, message: err.message });
}
