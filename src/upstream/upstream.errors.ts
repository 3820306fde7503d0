import { DomainError } from 'src/common/errors';

/**
 * Why an upstream request failed: `status` (an answer other than 200), `timeout` (no connection, no
 * headers, or a body that stalled), `network` (refused, reset, DNS...), `truncated` (the body ended
 * before its Content-Length or its final chunk), `unsupported` (an answer we cannot use, such as an
 * unknown Content-Encoding or a redirect to a non-HTTP URL), `refused` (a URL or redirect leading outside
 * the upstream's origin and the allowed origins, or from https to http: nothing was sent there),
 * `throttled` (the upstream asked to wait, by a 429 or 503 with Retry-After, and that time has not come).
 */
export type UpstreamFailureReason = 'status' | 'timeout' | 'network' | 'truncated' | 'unsupported' | 'refused' | 'throttled';

/**
 * An upstream could not deliver. 502 rather than 503: the fault is in the server behind us, and Nix
 * retries both alike (any 5xx but 501/505/511 is transient to it). The message names the upstream by
 * host only, never by a URL that could carry credentials or a signed query string.
 */
export class UpstreamUnavailableError extends DomainError {
  readonly status = 502;

  constructor(
    message: string,
    readonly reason: UpstreamFailureReason,
    /** The upstream's HTTP status when `reason` is `status`. */
    readonly upstreamStatus?: number,
    /** The system error code (ECONNRESET, ECONNREFUSED...) when `reason` is `network`. */
    readonly code?: string,
  ) {
    super(message);
  }

  /** How long a 429 or 503 asked to wait (its Retry-After, in ms), when it said. */
  retryAfterMs?: number;
}
