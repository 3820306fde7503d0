import { backoffDelay } from './lock.backoff';

describe('backoffDelay', () => {
  const retry = { maxAttempts: 3, initialDelayMs: 100, maxDelayMs: 2000, jitter: false };

  it('doubles from the initial delay: min(initial * 2^attempt, max)', () => {
    expect([0, 1, 2, 3, 4, 5, 6].map((attempt) => backoffDelay(attempt, retry))).toEqual([100, 200, 400, 800, 1600, 2000, 2000]);
  });

  it('stays at the maximum however many attempts were made', () => {
    expect(backoffDelay(10_000, retry)).toBe(2000);
  });

  it('adds random(0, delay) with jitter, as docs/ha.md shows (attempt 1: 100 ms + 0–100 ms)', () => {
    const sut = { ...retry, jitter: true };
    expect(backoffDelay(0, sut, () => 0)).toBe(100);
    expect(backoffDelay(0, sut, () => 0.5)).toBe(150);
    expect(backoffDelay(2, sut, () => 0.999)).toBeCloseTo(799.6);
    expect(backoffDelay(8, sut, () => 1)).toBe(4000);
  });

  it('stays within [delay, 2 * delay) with the real random source', () => {
    const sut = { ...retry, jitter: true };
    for (let i = 0; i < 1000; i++) {
      const delay = backoffDelay(1, sut);
      expect(delay).toBeGreaterThanOrEqual(200);
      expect(delay).toBeLessThan(400);
    }
  });
});
