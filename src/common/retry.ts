import { setTimeout as sleep } from 'node:timers/promises';

export interface RetryPolicy {
  /** Tries in all, the first included. */
  attempts: number;
  /** Whether a failure is worth another try (the last failure is thrown whatever this says). */
  retryable: (error: unknown) => boolean;
  /** The wait before try number `attempt + 1` (attempt counts from 1). */
  delayMs: (attempt: number) => number;
}

/**
 * Runs `work`, and again after the policy's delay while it fails with a retryable error, up to the
 * policy's number of tries; then throws the last error. The one retry loop of the code base: the
 * upstream client and the database writes each bring their own policy.
 */
export async function retry<T>(work: () => Promise<T>, policy: RetryPolicy): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      if (attempt >= policy.attempts || !policy.retryable(error)) throw error;
      await sleep(policy.delayMs(attempt));
    }
  }
}
