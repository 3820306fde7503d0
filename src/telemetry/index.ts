export { DISABLED_TRACING, Tracing } from './tracing';
export type { ActiveSpan, ClientSpan, SpanAttributes, WhenHeld } from './tracing';
export { TelemetryModule, createTracing } from './telemetry.module';
// OtelTracing is deliberately not exported: importing it loads the OpenTelemetry SDK, which
// createTracing loads only when tracing is enabled.
