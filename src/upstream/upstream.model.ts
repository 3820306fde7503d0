import { Readable } from 'node:stream';
import { NarInfo, PublicKey } from 'src/nix';
import { DEFAULT_PRIORITY } from './upstream.cache-info';
import { UpstreamTarget } from 'src/net';

/** What callers and /health see of an upstream: a snapshot, safe to log (no credentials). */
export interface UpstreamInfo {
  /** Base URL without `?priority=`, credentials or trailing slash; what `fetchNar` takes back. */
  url: string;
  /** `host[:port]`, the metrics label. */
  host: string;
  /** Lower is preferred: `?priority=N`, else the upstream's nix-cache-info, else 50. */
  priority: number;
  /** False after a failed health check: lookups skip it until a check succeeds again. */
  healthy: boolean;
  /** Why the last health check failed. */
  reason?: string;
  /** False when no public key applies to it: its narinfos are taken unchecked. */
  verified: boolean;
  /** ISO time until which it is skipped, as its 429 or 503 asked (Retry-After); absent when it is not. */
  retryAfter?: string;
}

/** A narinfo found upstream, parsed, checked against the hash asked for, and verified when the upstream has keys. */
export interface UpstreamNarInfo {
  upstream: UpstreamInfo;
  /** As the upstream sent it, hashes normalised to `sha256:<nix32>`; the upstream's Sigs are kept. */
  info: NarInfo;
  /** `info.url` resolved against the upstream's base, query string kept. */
  narUrl: string;
}

/**
 * What the upstreams said about a narinfo. `absent` is a certain "not found": every configured upstream
 * was asked and answered 403, 404 or 410; only it may be remembered as such. `unavailable` is "not
 * found here, but not certain": some upstream was skipped as unhealthy, failed (5xx, 429, any other
 * status, timeout, network), or answered something unusable (unparsable, for another path,
 * unverifiable, pointing outside the allowed origins), or there is no upstream at all.
 */
export type NarInfoLookup = { outcome: 'found'; found: UpstreamNarInfo } | { outcome: 'absent' } | { outcome: 'unavailable' };

/** A file other than a narinfo or NAR found upstream (see UpstreamService.findArtifact). */
export interface UpstreamArtifact {
  upstream: UpstreamInfo;
  body: Readable;
  contentLength?: number;
  /** As the upstream sent it (lower case), when it is one of the encodings asked for. */
  contentEncoding?: string;
}

/** The service's mutable record of one configured upstream. */
export class Upstream {
  /** Optimistic until the first health check answers, so that nothing is skipped for want of a check. */
  healthy = true;
  reason?: string;
  priority: number;
  /** Epoch ms until which it is skipped (its Retry-After); 0 when it is not. */
  skippedUntil = 0;

  constructor(
    readonly target: UpstreamTarget,
    readonly publicKeys: readonly PublicKey[],
  ) {
    this.priority = target.priorityOverride ?? DEFAULT_PRIORITY;
  }

  get url(): string {
    return this.target.url;
  }

  get host(): string {
    return this.target.host;
  }

  /** Still waiting for the time its Retry-After named? */
  skipped(now: number): boolean {
    return now < this.skippedUntil;
  }

  snapshot(): UpstreamInfo {
    const info: UpstreamInfo = {
      url: this.url,
      host: this.host,
      priority: this.priority,
      healthy: this.healthy,
      verified: this.publicKeys.length > 0,
    };
    if (this.reason !== undefined) info.reason = this.reason;
    if (this.skipped(Date.now())) info.retryAfter = new Date(this.skippedUntil).toISOString();
    return info;
  }
}
