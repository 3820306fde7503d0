import type { OutgoingHttpHeaders } from 'node:http';
import type { FastifyInstance } from 'fastify';

/**
 * The tracing seam: what the services see of OpenTelemetry. Nothing here imports an OpenTelemetry
 * package; the SDK is loaded (see telemetry.module.ts) only when `--otel-enabled` is set, and the
 * disabled implementation below does nothing but call what it is given.
 */
export type SpanAttributes = Readonly<Record<string, string | number | boolean | undefined>>;

/** A span in progress, as the code running inside it sees it. */
export interface ActiveSpan {
  setAttributes(attributes: SpanAttributes): void;
}

/** The span of one outgoing HTTP exchange: ended by whoever sees the exchange end. */
export interface ClientSpan {
  /** Headers arrived: the status is recorded, the span ends once `body` closes (read or dropped). */
  answered(status: number, body: NodeJS.EventEmitter): void;
  /** No answer (refused, timed out, reset): the span ends failed. */
  failed(error: unknown): void;
}

/** Hands `fn` to the caller's context once the thing waited for (a lock) is held. */
export type WhenHeld = <R>(fn: () => R) => R;

export abstract class Tracing {
  /** False when `--otel-enabled` is off: callers may skip work that only feeds spans. */
  abstract readonly enabled: boolean;

  /**
   * Runs `fn` in a child span of the current one, ended when `fn` settles (failed when it throws).
   * Work started inside `fn` (awaited or not) belongs to the span.
   */
  abstract span<T>(name: string, fn: (span: ActiveSpan) => Promise<T>, attributes?: SpanAttributes): Promise<T>;

  /**
   * A span for the wait before `acquire` runs the callback it is given (a lock taken): it ends at
   * that moment, and what the callback runs belongs to the caller's span again, not to the wait.
   */
  abstract waiting<T>(name: string, attributes: SpanAttributes, acquire: (held: WhenHeld) => Promise<T>): Promise<T>;

  /**
   * A client span `name` for an outgoing request to `url` (child of the current span), whose W3C trace
   * context is written into `headers` (`traceparent`, `tracestate`). Never records the URL's query
   * or credentials. Outside any span (background health checks) nothing is traced nor sent.
   */
  abstract outgoing(name: string, method: string, url: URL, headers: OutgoingHttpHeaders, attributes?: SpanAttributes): ClientSpan;

  /** `trace_id` and `span_id` of the current span, for log lines; undefined outside a span. */
  abstract logFields(): { trace_id: string; span_id: string } | undefined;

  /** Gives every request of `fastify` a server span (trace context taken from its `traceparent`). */
  abstract traceRequests(fastify: FastifyInstance): void;

  /** Sends the spans still buffered and stops. */
  abstract shutdown(): Promise<void>;
}

const NO_SPAN: ActiveSpan = { setAttributes: () => undefined };
export const NO_CLIENT_SPAN: ClientSpan = { answered: () => undefined, failed: () => undefined };
const directly: WhenHeld = (fn) => fn();

/** `--otel-enabled` off: every method only calls what it is given. */
export class DisabledTracing extends Tracing {
  readonly enabled = false;

  span<T>(_name: string, fn: (span: ActiveSpan) => Promise<T>): Promise<T> {
    return fn(NO_SPAN);
  }

  waiting<T>(_name: string, _attributes: SpanAttributes, acquire: (held: WhenHeld) => Promise<T>): Promise<T> {
    return acquire(directly);
  }

  outgoing(): ClientSpan {
    return NO_CLIENT_SPAN;
  }

  logFields(): undefined {
    return undefined;
  }

  traceRequests(): void {}

  async shutdown(): Promise<void> {}
}

export const DISABLED_TRACING: Tracing = new DisabledTracing();
