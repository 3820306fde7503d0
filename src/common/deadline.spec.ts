import { waitAtMost, withTimeout } from './deadline';

describe('withTimeout', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('passes the value through when the promise settles first, and leaves no timer', async () => {
    await expect(withTimeout(Promise.resolve(7), 1000, 'late')).resolves.toBe(7);
    await expect(withTimeout(Promise.reject(new Error('boom')), 1000, 'late')).rejects.toThrow('boom');
    expect(jest.getTimerCount()).toBe(0);
  });

  it('rejects with the message once the time is up', async () => {
    const sut = withTimeout(new Promise(() => undefined), 1000, 'no answer within 1000 ms');
    jest.advanceTimersByTime(1000);
    await expect(sut).rejects.toThrow('no answer within 1000 ms');
  });
});

describe('waitAtMost', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('says whether the promise settled in time, a rejection counting as settled', async () => {
    await expect(waitAtMost(Promise.resolve(), 1000)).resolves.toBe(true);
    await expect(waitAtMost(Promise.reject(new Error('x')), 1000)).resolves.toBe(true);
    expect(jest.getTimerCount()).toBe(0);
    const sut = waitAtMost(new Promise(() => undefined), 1000);
    jest.advanceTimersByTime(1000);
    await expect(sut).resolves.toBe(false);
  });
});
