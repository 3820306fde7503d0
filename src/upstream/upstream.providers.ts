import { Inject, Injectable, Logger, Provider } from '@nestjs/common';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Registry } from 'prom-client';
import { NcpsConfig } from 'src/config/config';
import { NCPS_CONFIG } from 'src/config/config.module';
import { Tracing } from 'src/telemetry';
import { UpstreamHttpClient } from './upstream.http';
import { UpstreamMetrics } from './upstream.metrics';
import { loadNetrc, Netrc, netrcCredentials } from './upstream.netrc';
import { credentialsFor } from './upstream.origins';
import { proxySettings } from './upstream.proxy';
import { DEFAULT_MAX_CONNECTIONS, UpstreamTarget, parseAllowedOrigin, parseUpstreamUrl } from 'src/net';

/**
 * A NAR download that receives nothing for this long fails. Shorter than Nix's own
 * stalled-download-timeout (300 s), so that our download fails before our clients give up on us.
 */
const NAR_BODY_IDLE_TIMEOUT_MS = 60_000;

/**
 * What requests to the upstreams carry for authorization: the userinfo of an upstream's URL, or the
 * netrc entry of its host (`--netrc-file`, read once at start), sent only to that upstream's origin.
 */
@Injectable()
export class UpstreamCredentials {
  private readonly logger = new Logger('UpstreamService');
  private readonly targets: UpstreamTarget[];
  private readonly netrcFile: string;
  private netrc: Netrc | null = null;
  private loading?: Promise<void>;

  constructor(@Inject(NCPS_CONFIG) config: NcpsConfig) {
    this.targets = config.upstream.urls.map(parseUpstreamUrl);
    this.netrcFile = config.upstream.netrcFile;
  }

  /** Reads the netrc file (once, however often it is called). A missing file is normal; an unreadable one is reported by path and ignored. */
  load(): Promise<void> {
    this.loading ??= this.readNetrc();
    return this.loading;
  }

  /** The Authorization header for a request to `url`, if any (see credentialsFor). */
  authorization(url: URL): string | undefined {
    return credentialsFor(url, this.targets, this.netrc);
  }

  private async readNetrc(): Promise<void> {
    try {
      this.netrc = await loadNetrc(this.netrcFile);
      const netrc = this.netrc;
      if (netrc) {
        const hosts = this.targets.filter((target) => netrcCredentials(netrc, target.hostname));
        this.logger.log({ file: this.netrcFile, upstreams: hosts.map((target) => target.url) }, 'netrc loaded');
      }
    } catch (error) {
      this.logger.warn({ file: this.netrcFile, reason: (error as NodeJS.ErrnoException).code }, 'netrc unreadable: ignored');
    }
  }
}

/** The upstream module's I/O and metrics, built from the configuration. */
export const UPSTREAM_PROVIDERS: Provider[] = [
  UpstreamCredentials,
  {
    provide: UpstreamMetrics,
    inject: [NCPS_CONFIG, Registry],
    useFactory: (config: NcpsConfig, registry: Registry) =>
      new UpstreamMetrics(
        registry,
        config.upstream.urls.map((url) => parseUpstreamUrl(url).host),
      ),
  },
  {
    provide: UpstreamHttpClient,
    inject: [NCPS_CONFIG, UpstreamMetrics, UpstreamCredentials, { token: Tracing, optional: true }],
    useFactory: (config: NcpsConfig, metrics: UpstreamMetrics, credentials: UpstreamCredentials, tracing?: Tracing) => {
      const targets = config.upstream.urls.map(parseUpstreamUrl);
      return new UpstreamHttpClient({
        dialTimeoutMs: config.upstream.dialerTimeoutMs,
        headerTimeoutMs: config.upstream.responseHeaderTimeoutMs,
        bodyIdleTimeoutMs: NAR_BODY_IDLE_TIMEOUT_MS,
        authorization: (url) => credentials.authorization(url),
        allowedOrigins: new Set(config.upstream.allowedOrigins.map(parseAllowedOrigin)),
        metrics,
        proxies: proxySettings(config.upstream),
        ca: config.upstream.caFile === undefined ? undefined : [readCaFile(config.upstream.caFile)],
        tracing: tracing?.enabled ? tracing : undefined,
        // Several upstreams on one origin (different paths) share its pools: the smallest cap applies.
        maxConnections: (origin) =>
          Math.min(...targets.filter((target) => target.origin === origin).map((target) => target.maxConnections), DEFAULT_MAX_CONNECTIONS),
      });
    },
  },
];

/** `--cache-upstream-ca-file`, read once at start: a file that is unreadable or holds no certificate stops the start. */
function readCaFile(path: string): Buffer {
  let pem: Buffer;
  try {
    pem = readFileSync(path);
  } catch (error) {
    throw new Error(`--cache-upstream-ca-file ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  try {
    new X509Certificate(pem);
  } catch {
    throw new Error(`--cache-upstream-ca-file ${path}: not a PEM certificate`);
  }
  return pem;
}
