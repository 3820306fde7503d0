import { Test } from '@nestjs/testing';
import { randomBytes } from 'node:crypto';
import { Registry } from 'prom-client';
import { buildConfig } from 'src/config/build-config';
import { ConfigModule } from 'src/config/config.module';
import { resolveOptions } from 'src/config/resolve';
import { MetricsModule } from 'src/metrics/metrics.module';
import { NarInfo, nix32Encode, parseHash, SecretKey, serializeNarInfo, signedOnlyBy } from 'src/nix';
import { UpstreamHealthIndicator, UpstreamModule, UpstreamService } from 'src/upstream';

export interface UpstreamHarness {
  service: UpstreamService;
  health: UpstreamHealthIndicator;
  registry: Registry;
  close(): Promise<void>;
}

export interface HarnessOptions {
  urls: string[];
  publicKeys?: string[];
  /** Default: every URL when no public key is given (an upstream without a key is refused otherwise). */
  allowUnsigned?: string[];
  allowedOrigins?: string[];
  netrcFile?: string;
  /** Go durations; 300ms by default so that timeout tests stay short. */
  dialerTimeout?: string;
  responseHeaderTimeout?: string;
  /** Further flags (without dashes), e.g. proxies. */
  flags?: Record<string, unknown>;
  /** The environment the options are read from (default empty), e.g. `{ https_proxy: ... }`. */
  env?: NodeJS.ProcessEnv;
}

/** UpstreamModule as the app wires it (real config parsing, metrics registry, lifecycle hooks), initialised. */
export async function startUpstreams(options: HarnessOptions): Promise<UpstreamHarness> {
  const config = buildConfig(
    resolveOptions({
      flags: {
        'cache-hostname': 'ncps-test',
        'cache-upstream-url': options.urls,
        'cache-upstream-public-key': options.publicKeys ?? [],
        'cache-upstream-allow-unsigned': options.allowUnsigned ?? (options.publicKeys?.length ? [] : options.urls),
        'cache-upstream-allowed-origin': options.allowedOrigins ?? [],
        'cache-upstream-dialer-timeout': options.dialerTimeout ?? '300ms',
        'cache-upstream-response-header-timeout': options.responseHeaderTimeout ?? '300ms',
        'netrc-file': options.netrcFile ?? '/nonexistent/netrc',
        ...options.flags,
      },
      env: options.env ?? {},
    }),
  );
  const moduleRef = await Test.createTestingModule({
    imports: [ConfigModule.forRoot(config), MetricsModule, UpstreamModule],
  }).compile();
  moduleRef.useLogger(false);
  await moduleRef.init();
  return {
    service: moduleRef.get(UpstreamService),
    health: moduleRef.get(UpstreamHealthIndicator),
    registry: moduleRef.get(Registry),
    close: () => moduleRef.close(),
  };
}

export interface MadeNarInfo {
  hash: string;
  info: NarInfo;
  /** The narinfo as an upstream serves it. */
  text: string;
}

/** A narinfo for a fresh random store path, signed with `key` when given. */
export function makeNarInfo(options: { key?: SecretKey; url?: string; name?: string } = {}): MadeNarInfo {
  const hash = nix32Encode(randomBytes(20));
  const fileHash = nix32Encode(randomBytes(32));
  let info: NarInfo = {
    storePath: `/nix/store/${hash}-${options.name ?? 'hello-2.12'}`,
    url: options.url ?? `nar/${fileHash}.nar.xz`,
    compression: 'xz',
    fileHash: `sha256:${fileHash}`,
    fileSize: 1000,
    narHash: `sha256:${nix32Encode(randomBytes(32))}`,
    narSize: 4000,
    references: [`${nix32Encode(randomBytes(20))}-glibc-2.40`],
    sigs: [],
  };
  if (options.key) info = signedOnlyBy(info, options.key);
  return { hash, info, text: serializeNarInfo(info) };
}

/** The same narinfo with its NarHash written in base16 or SRI, as some caches send it. */
export function withNarHashEncoding(made: MadeNarInfo, encoding: 'base16' | 'sri'): string {
  const hash = parseHash(made.info.narHash);
  const written = encoding === 'base16' ? `sha256:${hash.digest.toString('hex')}` : hash.toSri();
  return made.text.replace(`NarHash: ${made.info.narHash}\n`, `NarHash: ${written}\n`);
}
