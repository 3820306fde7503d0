import { Inject, Injectable, Logger, OnApplicationShutdown, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { Readable } from 'node:stream';
import { BadRequestError } from 'src/common/errors';
import { NcpsConfig } from 'src/config/config';
import { NCPS_CONFIG } from 'src/config/config.module';
import { upstreamTrust } from 'src/config/upstream-trust';
import { parseAllowedOrigin, parseUpstreamUrl } from 'src/net';
import { isStorePathHash, NarInfo, parseNarInfo, parsePublicKey, STORE_DIR, storePathHash, verifyNarInfo } from 'src/nix';
import { DEFAULT_PRIORITY, parseCacheInfo } from './upstream.cache-info';
import { UpstreamUnavailableError } from './upstream.errors';
import { UpstreamDocument, UpstreamHttpClient } from './upstream.http';
import { UpstreamMetrics } from './upstream.metrics';
import { NarInfoLookup, Upstream, UpstreamArtifact, UpstreamInfo, UpstreamNarInfo } from './upstream.model';
import { mayFetch } from './upstream.origins';
import { UpstreamCredentials } from './upstream.providers';
import { firstByPriority } from './upstream.race';
import { ProxySettings, proxySettings } from './upstream.proxy';
import { resolveNarUrl } from './upstream.url';

/** As in ncps. */
const HEALTH_CHECK_INTERVAL_MS = 60_000;
/** Statuses that mean "not here" (403: S3 answers it for a missing key), as for the Nix client. */
const ABSENT_STATUSES = new Set([403, 404, 410]);

/**
 * The configured upstream caches: their health and priority, narinfo lookups across them, NAR
 * downloads from them. Lookups never throw for an upstream's absence or failure: they answer null
 * (findNarInfo) or say which of the two it was (lookupNarInfo).
 *
 * Health: checked at start and every minute by fetching nix-cache-info (its Priority unless the URL
 * overrides it; a StoreDir other than /nix/store makes the upstream unhealthy, one left out is
 * accepted, as by Nix). The first check runs in the background, so the server starts with every
 * upstream unreachable; lookups wait for it (it is bounded by the timeouts) so that they use real
 * priorities and skip dead upstreams from the first request on.
 */
@Injectable()
export class UpstreamService implements OnModuleInit, OnModuleDestroy, OnApplicationShutdown {
  private readonly logger = new Logger(UpstreamService.name);
  private readonly upstreams: Upstream[];
  private readonly keyWarnings: string[];
  private readonly allowedOrigins: ReadonlySet<string>;
  private readonly proxies: ProxySettings;
  private firstCheck: Promise<void> = Promise.resolve();
  private runningCheck?: Promise<void>;
  private checkTimer?: NodeJS.Timeout;

  constructor(
    @Inject(NCPS_CONFIG) config: NcpsConfig,
    private readonly http: UpstreamHttpClient,
    private readonly metrics: UpstreamMetrics,
    private readonly credentials: UpstreamCredentials,
  ) {
    const targets = config.upstream.urls.map(parseUpstreamUrl);
    // Also checked when the configuration is built; repeated here so that no other path skips it.
    const { keys, warnings } = upstreamTrust(targets, config.upstream.publicKeys.map(parsePublicKey), config.upstream.allowUnsigned);
    this.upstreams = targets.map((target, index) => new Upstream(target, keys[index]));
    this.keyWarnings = warnings;
    this.allowedOrigins = new Set(config.upstream.allowedOrigins.map(parseAllowedOrigin));
    this.proxies = proxySettings(config.upstream);
  }

  async onModuleInit(): Promise<void> {
    for (const warning of this.keyWarnings) this.logger.warn(warning);
    const { http, https } = this.proxies;
    // Named by host and port only: a proxy URL may carry credentials.
    if (http || https)
      this.logger.log(
        { http_proxy: http?.label, https_proxy: https?.label },
        'upstream requests go through a proxy (except NO_PROXY hosts)',
      );
    await this.credentials.load();
    this.firstCheck = this.checkUpstreams();
    this.checkTimer = setInterval(() => void this.checkUpstreams(), HEALTH_CHECK_INTERVAL_MS).unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.checkTimer);
  }

  // The last shutdown phase: downloads still finishing in other modules' onModuleDestroy keep their connections.
  onApplicationShutdown(): void {
    this.http.close();
  }

  /** Every configured upstream, in configuration order. */
  list(): UpstreamInfo[] {
    return this.upstreams.map((upstream) => upstream.snapshot());
  }

  /**
   * The narinfo of `hash` from the best-priority healthy upstream that has it, or null when none has
   * it, or none answered within the timeouts. Asks all healthy upstreams at once.
   */
  async findNarInfo(hash: string): Promise<UpstreamNarInfo | null> {
    const lookup = await this.lookupNarInfo(hash);
    return lookup.outcome === 'found' ? lookup.found : null;
  }

  /**
   * As findNarInfo, and when nothing is found, whether that is certain (see NarInfoLookup): a miss
   * is `absent` only when every configured upstream was asked and said so.
   */
  async lookupNarInfo(hash: string): Promise<NarInfoLookup> {
    // Never let something that is not a store path hash into an upstream URL.
    if (!isStorePathHash(hash)) throw new BadRequestError('invalid store path hash');
    await this.firstCheck;
    const healthy = this.usable();
    let certain = healthy.length > 0 && healthy.length === this.upstreams.length;
    const found = await firstByPriority(healthy, async (upstream) => {
      const answer = await this.lookup(upstream, hash).catch(() => 'failed' as const);
      this.metrics.narInfoLookup(upstream.host, typeof answer !== 'string' ? 'hit' : answer === 'absent' ? 'not_found' : 'error');
      if (typeof answer !== 'string') return answer;
      if (answer === 'failed') certain = false;
      return null;
    });
    // A null from the race means every upstream has answered, so `certain` is final.
    if (found) return { outcome: 'found', found };
    return { outcome: certain ? 'absent' : 'unavailable' };
  }

  /**
   * Streams a NAR from `narUrl` (as returned in UpstreamNarInfo, or remembered from it). `upstream`
   * (its `url`) names the upstream for metrics, and the origin the URL and its redirects may lead to
   * besides the allowed origins (none if it is no longer configured). Throws UpstreamUnavailableError
   * for any status but 200, for a URL or redirect outside those origins (nothing is sent there), and
   * for transport failures; the returned body errors, rather than ends, if the transfer breaks.
   */
  async fetchNar(narUrl: string, upstream: Pick<UpstreamInfo, 'url'>): Promise<{ body: Readable; contentLength?: number }> {
    const url = URL.canParse(narUrl) ? new URL(narUrl) : null;
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      throw new UpstreamUnavailableError('NAR URL is not an http(s) URL', 'unsupported');
    }
    const label = URL.canParse(upstream.url) ? new URL(upstream.url).host : url.host;
    const configured = this.upstreams.find((candidate) => candidate.url === upstream.url);
    // Its NARs are nowhere else; asking anyway would ignore what it asked for, so the caller gets a quick 502.
    if (configured?.skipped(Date.now())) {
      throw new UpstreamUnavailableError(
        `upstream ${label} asked to wait until ${new Date(configured.skippedUntil).toISOString()}`,
        'throttled',
      );
    }
    try {
      return await this.http.getStream(url, { label, kind: 'nar', origin: configured?.target.origin });
    } catch (error) {
      if (configured && error instanceof UpstreamUnavailableError && error.retryAfterMs !== undefined)
        this.skip(configured, error.retryAfterMs);
      throw error;
    }
  }

  /**
   * Streams the file at `path` (relative to the upstream root; the caller validated it: a listing,
   * log, realisation...) from the best-priority healthy upstream that answers 200, or null when none
   * has it or none answered. Bodies in one of `encodings` come as sent, with their Content-Encoding;
   * the body errors, rather than ends, if the transfer breaks. The losers' bodies are closed.
   */
  async findArtifact(path: string, encodings: ReadonlySet<string>): Promise<UpstreamArtifact | null> {
    await this.firstCheck;
    const healthy = this.usable();
    let decided = false;
    const opened: Readable[] = [];
    const found = await firstByPriority(healthy, async (upstream) => {
      const log = { upstream: upstream.url, path };
      try {
        const context = { label: upstream.host, kind: 'artifact' as const, origin: upstream.target.origin };
        const answer = await this.http.getStream(new URL(`${upstream.url}/${path}`), context, encodings);
        if (decided) answer.body.destroy();
        else opened.push(answer.body);
        return decided ? null : { upstream: upstream.snapshot(), ...answer };
      } catch (error) {
        const absent = error instanceof UpstreamUnavailableError && ABSENT_STATUSES.has(error.upstreamStatus ?? 0);
        if (error instanceof UpstreamUnavailableError && error.retryAfterMs !== undefined) this.skip(upstream, error.retryAfterMs);
        if (absent) this.logger.debug(log, 'file not upstream');
        else this.logger.warn({ ...log, reason: (error as Error).message }, 'file lookup failed');
        return null;
      }
    });
    decided = true;
    for (const body of opened) if (body !== found?.body) body.destroy();
    return found;
  }

  /** Probes every upstream once (the periodic check; exposed for tests). Never rejects. */
  checkUpstreams(): Promise<void> {
    this.runningCheck ??= Promise.all(this.upstreams.map((upstream) => this.check(upstream)))
      .then(() => undefined)
      .finally(() => (this.runningCheck = undefined));
    return this.runningCheck;
  }

  /**
   * The upstreams lookups ask: healthy, and not waiting out a Retry-After. One skipped makes a miss
   * uncertain (NarInfoLookup `unavailable`), never "not found".
   */
  private usable(): Upstream[] {
    const now = Date.now();
    return this.upstreams.filter((upstream) => upstream.healthy && !upstream.skipped(now));
  }

  /** A 429 or 503 said when to come back: until then the upstream is neither asked nor probed. */
  private skip(upstream: Upstream, retryAfterMs: number): void {
    const until = Date.now() + retryAfterMs;
    if (until <= upstream.skippedUntil) return;
    upstream.skippedUntil = until;
    this.logger.warn(
      { upstream: upstream.url, until: new Date(until).toISOString() },
      'upstream asked to wait (Retry-After): skipped until then',
    );
  }

  private async check(upstream: Upstream): Promise<void> {
    // Not probed while it asked to wait: its health stays as last seen.
    if (upstream.skipped(Date.now())) return;
    const outcome = await this.probe(upstream);
    const wasHealthy = upstream.healthy;
    if ('reason' in outcome) {
      upstream.healthy = false;
      upstream.reason = outcome.reason;
      if (wasHealthy) this.logger.warn({ upstream: upstream.url, reason: outcome.reason }, 'upstream unhealthy: lookups skip it');
      return;
    }
    upstream.healthy = true;
    upstream.reason = undefined;
    if (!wasHealthy) this.logger.log({ upstream: upstream.url }, 'upstream healthy again');
    if (upstream.priority !== outcome.priority) {
      this.logger.log({ upstream: upstream.url, priority: outcome.priority }, 'upstream priority');
      upstream.priority = outcome.priority;
    }
  }

  private async probe(upstream: Upstream): Promise<{ priority: number } | { reason: string }> {
    let answer: UpstreamDocument;
    try {
      answer = await this.http.getDocument(new URL(`${upstream.url}/nix-cache-info`), {
        label: upstream.host,
        kind: 'cache_info',
        origin: upstream.target.origin,
      });
    } catch (error) {
      return { reason: (error as Error).message };
    }
    if (answer.retryAfterMs !== undefined) this.skip(upstream, answer.retryAfterMs);
    if (answer.text === undefined) return { reason: `nix-cache-info answered HTTP ${answer.status}` };
    const info = parseCacheInfo(answer.text);
    if (info.storeDir !== undefined && info.storeDir !== STORE_DIR) {
      return { reason: `StoreDir is ${info.storeDir}, not ${STORE_DIR}` };
    }
    return { priority: upstream.target.priorityOverride ?? info.priority ?? DEFAULT_PRIORITY };
  }

  /**
   * One upstream's answer for `hash`: `absent` (403, 404, 410), or `failed` for any other status, a
   * transport failure, or a narinfo that is invalid, unverifiable or unusable, with a log line saying why.
   */
  private async lookup(upstream: Upstream, hash: string): Promise<UpstreamNarInfo | 'absent' | 'failed'> {
    const log = { upstream: upstream.url, hash };
    let answer: UpstreamDocument;
    try {
      answer = await this.http.getDocument(new URL(`${upstream.url}/${hash}.narinfo`), {
        label: upstream.host,
        kind: 'narinfo',
        origin: upstream.target.origin,
      });
    } catch (error) {
      this.logger.warn({ ...log, reason: (error as Error).message }, 'narinfo lookup failed');
      return 'failed';
    }
    if (answer.text === undefined) {
      if (ABSENT_STATUSES.has(answer.status)) {
        this.logger.debug({ ...log, status: answer.status }, 'narinfo not upstream');
        return 'absent';
      }
      this.logger.warn({ ...log, status: answer.status }, 'narinfo lookup failed');
      if (answer.retryAfterMs !== undefined) this.skip(upstream, answer.retryAfterMs);
      return 'failed';
    }
    let info: NarInfo;
    try {
      info = parseNarInfo(answer.text);
    } catch (error) {
      this.logger.warn({ ...log, reason: (error as Error).message }, 'invalid narinfo');
      return 'failed';
    }
    if (storePathHash(info.storePath) !== hash) {
      this.logger.warn({ ...log, store_path: info.storePath }, 'narinfo is for another store path');
      return 'failed';
    }
    if (upstream.publicKeys.length > 0 && !verifyNarInfo(info, upstream.publicKeys)) {
      this.logger.warn({ ...log, sigs: info.sigs.map((sig) => sig.split(':')[0]) }, 'narinfo signature invalid');
      return 'failed';
    }
    const narUrl = resolveNarUrl(upstream.url, info.url);
    if (narUrl === null) {
      this.logger.warn(log, 'narinfo URL is not an http(s) URL or path');
      return 'failed';
    }
    // The URL is not covered by the signature: an absolute one may lead only where the operator said.
    const narOrigin = new URL(narUrl).origin;
    if (!mayFetch(new URL(narUrl), upstream.target.origin, this.allowedOrigins)) {
      this.logger.warn({ ...log, nar_origin: narOrigin }, 'narinfo URL leads outside the upstream and the allowed origins: ignored');
      return 'failed';
    }
    return { upstream: upstream.snapshot(), info, narUrl };
  }
}
