/**
 * An upstream that answers 429 or 503 with `Retry-After` asked us to wait: it is skipped (other
 * upstreams are still asked) until then. The wait is capped, so that a bogus or hostile value cannot
 * silence an upstream for days; the periodic health check does not probe it meanwhile either.
 */
export const MAX_RETRY_AFTER_MS = 60 * 60 * 1000;

/** The statuses whose Retry-After is honoured. */
export const RETRY_AFTER_STATUSES: ReadonlySet<number> = new Set([429, 503]);

/**
 * How long `Retry-After` (delay-seconds, or an HTTP date) asks to wait from `now`, in ms, capped at
 * MAX_RETRY_AFTER_MS; undefined when the header is absent, unreadable, or names a time already past.
 */
export function parseRetryAfter(value: string | string[] | undefined, now: number): number | undefined {
  const text = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!text) return undefined;
  let ms: number;
  if (/^\d+$/.test(text)) {
    ms = Number(text) * 1000;
  } else {
    // An HTTP date (IMF-fixdate, or the obsolete RFC 850 and asctime forms Date.parse also reads); a bare number with a sign or fraction is not one.
    const at = /[a-z]/i.test(text) ? Date.parse(text) : NaN;
    if (Number.isNaN(at)) return undefined;
    ms = at - now;
  }
  if (ms <= 0) return undefined;
  return Math.min(ms, MAX_RETRY_AFTER_MS);
}
