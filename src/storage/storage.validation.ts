import { ByteRange } from './storage.port';

const SAFE_PREFIX = /^[A-Za-z0-9._/-]*$/;

/**
 * A list prefix may end halfway through a key (`nar/1w`) or at a slash (`nar/`), so it is not a key;
 * like a key, it must not be able to climb out of a provider's root.
 */
export function assertSafePrefix(prefix: string): void {
  const parts = prefix.split('/');
  if (!SAFE_PREFIX.test(prefix) || prefix.startsWith('/') || parts.some((p) => p === '.' || p === '..')) {
    throw new Error(`unsafe storage prefix: ${JSON.stringify(prefix)}`);
  }
}

/**
 * Both providers refuse the same malformed ranges, so callers see one behaviour. A range whose start
 * lies past the end of the object is unsatisfiable (HTTP 416) and also raises a RangeError, from the
 * provider that knows the size; an end past the object's end is clamped, as in HTTP.
 */
export function assertValidRange(range: ByteRange): void {
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
    throw new RangeError(`invalid byte range ${start}-${end}`);
  }
}

export function unsatisfiableRange(key: string, range: ByteRange): RangeError {
  return new RangeError(`byte range ${range.start}-${range.end} starts past the end of ${key}`);
}
