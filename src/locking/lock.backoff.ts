import { LockConfig } from 'src/config/config';

export type RetryPolicy = LockConfig['retry'];

/**
 * The documented retry delay (docs/ha.md): `delay = min(initial · 2^attempt, max)`, plus `random(0, delay)` with jitter
 * (attempt 0 waits 100–200 ms with the defaults, attempt 1 200–400 ms, ... capped at 2–4 s).
 * Jitter spreads the instances that were all woken by the same release.
 */
export function backoffDelay(attempt: number, retry: RetryPolicy, random: () => number = Math.random): number {
  const delay = Math.min(retry.initialDelayMs * 2 ** attempt, retry.maxDelayMs);
  return retry.jitter ? delay + random() * delay : delay;
}
