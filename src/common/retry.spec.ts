import { retry } from './retry';

describe('retry', () => {
  const transient = new Error('transient');
  const fatal = new Error('fatal');
  const policy = (attempts: number, delays: number[]) => ({
    attempts,
    retryable: (e: unknown) => e === transient,
    delayMs: (attempt: number) => (delays.push(attempt), 0),
  });

  it('tries again after a retryable failure, asking the delay of each attempt, and returns the first success', async () => {
    const delays: number[] = [];
    const work = jest.fn().mockRejectedValueOnce(transient).mockRejectedValueOnce(transient).mockResolvedValue('done');

    await expect(retry(work, policy(5, delays))).resolves.toBe('done');
    expect(work).toHaveBeenCalledTimes(3);
    expect(delays).toEqual([1, 2]);
  });

  it('throws a failure that is not retryable at once', async () => {
    const delays: number[] = [];
    const work = jest.fn().mockRejectedValueOnce(transient).mockRejectedValue(fatal);

    await expect(retry(work, policy(5, delays))).rejects.toBe(fatal);
    expect(work).toHaveBeenCalledTimes(2);
    expect(delays).toEqual([1]);
  });

  it('throws the last retryable failure once every attempt was used', async () => {
    const delays: number[] = [];
    const work = jest.fn().mockRejectedValue(transient);

    await expect(retry(work, policy(3, delays))).rejects.toBe(transient);
    expect(work).toHaveBeenCalledTimes(3);
    expect(delays).toEqual([1, 2]);
  });
});
