import { buildConfig } from './build-config';
import { resolveOptions } from './resolve';

const build = (flags: Record<string, unknown>, env: Record<string, string> = {}) =>
  buildConfig(resolveOptions({ flags, env }), { hostname: 'box', tempDir: '/tmp', homeDir: '/home/u' });

describe('--otel-enabled and --otel-endpoint', () => {
  it('are off and unset by default: nothing is traced nor sent', () => {
    expect(build({}).otel).toEqual({ enabled: false, endpoint: undefined });
  });

  it('come from flags or the house environment names, the endpoint without its trailing slash', () => {
    expect(build({ 'otel-enabled': 'true', 'otel-endpoint': 'http://collector:4318/' }).otel).toEqual({
      enabled: true,
      endpoint: 'http://collector:4318',
    });
    expect(build({}, { OTEL_ENABLED: 'true', OTEL_ENDPOINT: 'https://otel.example:4318/base' }).otel).toEqual({
      enabled: true,
      endpoint: 'https://otel.example:4318/base',
    });
  });

  it('leave the standard OTEL_EXPORTER_OTLP_* variables to the exporter (no endpoint chosen here)', () => {
    expect(build({ 'otel-enabled': 'true' }, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }).otel?.endpoint).toBeUndefined();
  });

  const refused = ['collector:4318', 'grpc://collector:4317', 'http://collector:4318/?x=1', 'not a url'];
  it.each(refused)('refuse the endpoint %s, naming the option', (endpoint) => {
    expect(() => build({ 'otel-endpoint': endpoint })).toThrow(/^--otel-endpoint: not an http\(s\) URL/);
  });

  it('never echo a refused endpoint (it may carry credentials)', () => {
    const refusal = expect.objectContaining({ message: expect.not.stringContaining('hunter2') });
    expect(() => build({ 'otel-endpoint': 'ftp://user:hunter2@collector' })).toThrow(refusal);
  });
});
