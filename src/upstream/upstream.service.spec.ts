import { Logger } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { HealthIndicatorService } from '@nestjs/terminus';
import { Registry } from 'prom-client';
import { BadRequestError } from 'src/common/errors';
import { NcpsConfig, UpstreamConfig } from 'src/config/config';
import { NCPS_CONFIG } from 'src/config/config.module';
import { testConfig } from 'test/support/config';
import { formatPublicKey, generateKeyPair } from 'src/nix';
import { UpstreamHealthIndicator } from './upstream.health';
import { UPSTREAM_PROVIDERS } from './upstream.providers';
import { UpstreamService } from './upstream.service';

// No request leaves these tests: the periodic check is replaced and nothing is looked up.
const configured = testConfig({
  'cache-upstream-url': ['https://a.example/?priority=5', 'https://b.example/cache'],
  'cache-upstream-public-key': [formatPublicKey(generateKeyPair('a.example-1').publicKey)],
  'cache-upstream-allow-unsigned': ['https://b.example/cache'],
  'cache-upstream-dialer-timeout': '300ms',
  'cache-upstream-response-header-timeout': '300ms',
  'netrc-file': '/nonexistent/netrc',
});
/** The configuration above, with upstream settings the configuration's own checks would refuse before the service sees them. */
const upstreamConfig = (overrides: Partial<UpstreamConfig> = {}): NcpsConfig => ({
  ...configured,
  upstream: { ...configured.upstream, ...overrides },
});

/** The service as the upstream module provides it: its HTTP client, metrics and credentials built from `config`. */
async function serviceFor(config: NcpsConfig): Promise<UpstreamService> {
  const moduleRef = await Test.createTestingModule({
    providers: [
      { provide: NCPS_CONFIG, useValue: config },
      { provide: Registry, useValue: new Registry() },
      ...UPSTREAM_PROVIDERS,
      UpstreamService,
    ],
  }).compile();
  return moduleRef.get(UpstreamService);
}

describe('UpstreamService', () => {
  let sut: UpstreamService;
  let warn: jest.SpyInstance;

  beforeEach(async () => {
    warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    sut = await serviceFor(upstreamConfig());
  });

  afterEach(() => {
    sut.onModuleDestroy();
    sut.onApplicationShutdown();
    jest.useRealTimers();
    jest.restoreAllMocks();
  });

  it('lists the upstreams with overridden or default priorities, healthy until checked', () => {
    expect(sut.list()).toEqual([
      { url: 'https://a.example', host: 'a.example', priority: 5, healthy: true, verified: true },
      { url: 'https://b.example/cache', host: 'b.example', priority: 50, healthy: true, verified: false },
    ]);
  });

  it('warns at start about each upstream that has no public key', async () => {
    jest.spyOn(sut, 'checkUpstreams').mockResolvedValue();
    await sut.onModuleInit();
    expect(warn).toHaveBeenCalledWith(
      'upstream https://b.example/cache has no public key: its narinfos are not verified, and served without our signature',
    );
    expect(warn).toHaveBeenCalledTimes(1);
  });

  it('checks the upstreams at start and every minute, with a timer that does not hold the process, until shutdown', async () => {
    jest.useFakeTimers();
    const check = jest.spyOn(sut, 'checkUpstreams').mockResolvedValue();
    const setIntervalSpy = jest.spyOn(global, 'setInterval');
    await sut.onModuleInit();
    expect(check).toHaveBeenCalledTimes(1);
    expect((setIntervalSpy.mock.results[0].value as NodeJS.Timeout).hasRef()).toBe(false);
    jest.advanceTimersByTime(59_999);
    expect(check).toHaveBeenCalledTimes(1);
    jest.advanceTimersByTime(1);
    expect(check).toHaveBeenCalledTimes(2);
    sut.onModuleDestroy();
    jest.advanceTimersByTime(180_000);
    expect(check).toHaveBeenCalledTimes(2);
  });

  it('refuses a hash that is not a store path hash before any request', async () => {
    await expect(sut.findNarInfo('../../etc/passwd')).rejects.toBeInstanceOf(BadRequestError);
  });

  it('refuses at construction an upstream without a key that is not allowed unsigned', async () => {
    await expect(serviceFor(upstreamConfig({ allowUnsigned: [] }))).rejects.toThrow('upstream https://b.example/cache has no public key');
  });

  it('fails at construction on a malformed public key', async () => {
    await expect(serviceFor(upstreamConfig({ publicKeys: ['nocolon'] }))).rejects.toThrow();
  });
});

describe('UpstreamHealthIndicator', () => {
  it('stays up and reports healthy, total and unverified upstreams', async () => {
    const service = await serviceFor(upstreamConfig());
    const sut = new UpstreamHealthIndicator(service, new HealthIndicatorService());
    await expect(sut.check()).resolves.toEqual({
      upstreams: {
        status: 'up',
        healthy: 2,
        total: 2,
        unverified: ['https://b.example/cache'],
        upstreams: [
          { url: 'https://a.example', priority: 5, healthy: true, reason: undefined },
          { url: 'https://b.example/cache', priority: 50, healthy: true, reason: undefined },
        ],
      },
    });
  });
});
