import { QueryFailedError } from 'typeorm';
import { isRetryableDatabaseError, withRetry } from './retry';

function driverError(code: string): QueryFailedError {
  return new QueryFailedError('UPDATE narinfos ...', [], Object.assign(new Error(`failed with ${code}`), { code }));
}

describe('isRetryableDatabaseError', () => {
  it.each(['40001', '40P01', 'ER_LOCK_DEADLOCK', 'ER_LOCK_WAIT_TIMEOUT', 'SQLITE_BUSY', 'SQLITE_BUSY_SNAPSHOT'])('retries %s', (code) => {
    expect(isRetryableDatabaseError(driverError(code))).toBe(true);
    expect(isRetryableDatabaseError(Object.assign(new Error(), { code }))).toBe(true);
  });

  it.each(['23505', 'ER_DUP_ENTRY', 'SQLITE_CONSTRAINT_UNIQUE', 'ECONNREFUSED'])('does not retry %s', (code) => {
    expect(isRetryableDatabaseError(driverError(code))).toBe(false);
  });

  it.each([undefined, null, 'text', new Error('plain')])('does not retry %p', (error) => {
    expect(isRetryableDatabaseError(error)).toBe(false);
  });
});

describe('withRetry', () => {
  it('runs the work again after a deadlock and returns its result', async () => {
    let calls = 0;
    const sut = withRetry(async () => {
      calls++;
      if (calls < 3) throw driverError('40P01');
      return 'done';
    });

    await expect(sut).resolves.toBe('done');
    expect(calls).toBe(3);
  });

  it('gives up after five attempts and throws the last error', async () => {
    let calls = 0;
    const sut = withRetry(async () => {
      calls++;
      throw driverError('ER_LOCK_DEADLOCK');
    });

    await expect(sut).rejects.toThrow('failed with ER_LOCK_DEADLOCK');
    expect(calls).toBe(5);
  });

  it('does not retry other errors', async () => {
    let calls = 0;
    const sut = withRetry(async () => {
      calls++;
      throw driverError('23505');
    });

    await expect(sut).rejects.toThrow('failed with 23505');
    expect(calls).toBe(1);
  });
});
