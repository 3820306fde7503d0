import { NarInfo, PublicKey } from 'src/nix';
import { DEFAULT_PRIORITY } from './upstream.cache-info';
import { UpstreamTarget } from './upstream.url';

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
}

/** A narinfo found upstream, parsed, checked against the hash asked for, and verified when the upstream has keys. */
export interface UpstreamNarInfo {
  upstream: UpstreamInfo;
  /** As the upstream sent it, hashes normalised to `sha256:<nix32>`; the upstream's Sigs are kept. */
  info: NarInfo;
  /** `info.url` resolved against the upstream's base, query string kept. */
  narUrl: string;
}

/** The service's mutable record of one configured upstream. */
export class Upstream {
  /** Optimistic until the first health check answers, so that nothing is skipped for want of a check. */
  healthy = true;
  reason?: string;
  priority: number;

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

  snapshot(): UpstreamInfo {
    const info: UpstreamInfo = {
      url: this.url,
      host: this.host,
      priority: this.priority,
      healthy: this.healthy,
      verified: this.publicKeys.length > 0,
    };
    if (this.reason !== undefined) info.reason = this.reason;
    return info;
  }
}
