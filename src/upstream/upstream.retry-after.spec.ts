import { MAX_RETRY_AFTER_MS, parseRetryAfter } from './upstream.retry-after';

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-12-04T12:00:00Z');

  it.each([
    ['120', 120_000],
    [' 5 ', 5_000],
    [['30', '60'], 30_000],
    ['Fri, 04 Dec 2026 12:01:30 GMT', 90_000],
    ['Friday, 04-Dec-26 12:00:10 GMT', 10_000],
  ])('reads %p as a wait of %p ms', (value, ms) => {
    expect(parseRetryAfter(value, now)).toBe(ms);
  });

  it('caps a long wait', () => {
    expect(parseRetryAfter('99999999', now)).toBe(MAX_RETRY_AFTER_MS);
    expect(parseRetryAfter('Sat, 04 Dec 2027 12:00:00 GMT', now)).toBe(MAX_RETRY_AFTER_MS);
  });

  it.each([undefined, '', '0', '-5', '1.5', '+3', 'soon', 'Fri, 04 Dec 2026 11:59:00 GMT', '2026-12-04'])(
    'asks for no wait with %p (absent, unreadable, zero or past)',
    (value) => {
      expect(parseRetryAfter(value, now)).toBeUndefined();
    },
  );
});
