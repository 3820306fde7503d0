import { Logger } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { Registry } from 'prom-client';
import { BadRequestError } from 'src/common/errors';
import { NcpsConfig, UpstreamConfig } from 'src/config/config';
import { formatPublicKey, generateKeyPair } from 'src/nix';
import { UpstreamHealthIndicator } from './upstream.health';
import { UpstreamService } from './upstream.service';

// No request leaves these tests: the periodic check is replaced and nothing is looked up.
const upstreamConfig = (overrides: Partial<UpstreamConfig> = {}): NcpsConfig =>
  ({
    upstream: {
      urls: ['https://a.example/?priority=5', 'https://b.example/cache'],
      publicKeys: [formatPublicKey(generateKeyPair('a.example-1').publicKey)],
      allowUnsigned: ['https://b.example/cache'],
      allowedOrigins: [],
      dialerTimeoutMs: 300,
      responseHeaderTimeoutMs: 300,
      netrcFile: '/nonexistent/netrc',
      noProxy: [],
      ...overrides,
    },
  }) as unknown as NcpsConfig;

describe('UpstreamService', () => {
  let sut: UpstreamService;
  let warn: jest.SpyInstance;

  beforeEach(() => {
    warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    sut = new UpstreamService(upstreamConfig(), new Registry());
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

  it('refuses at construction an upstream without a key that is not allowed unsigned', () => {
    expect(() => new UpstreamService(upstreamConfig({ allowUnsigned: [] }), new Registry())).toThrow(
      'upstream https://b.example/cache has no public key',
    );
  });

  it('fails at construction on a malformed public key', () => {
    expect(() => new UpstreamService(upstreamConfig({ publicKeys: ['nocolon'] }), new Registry())).toThrow();
  });
});

describe('UpstreamHealthIndicator', () => {
  it('stays up and reports healthy, total and unverified upstreams', async () => {
    const service = new UpstreamService(upstreamConfig(), new Registry());
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
