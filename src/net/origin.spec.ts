import { parseAllowedOrigin } from './origin';

describe('parseAllowedOrigin', () => {
  it.each([
    ['https://CDN.example', 'https://cdn.example'],
    ['https://cdn.example/', 'https://cdn.example'],
    ['https://cdn.example:443', 'https://cdn.example'],
    ['http://127.0.0.1:8080', 'http://127.0.0.1:8080'],
  ])('normalises %p to %p', (text, origin) => {
    expect(parseAllowedOrigin(text)).toBe(origin);
  });

  it.each(['cdn.example', 'ftp://cdn.example', 'file:///etc', 'https://cdn.example/nar', 'https://cdn.example/?a=1'])(
    'refuses %p',
    (text) => {
      expect(() => parseAllowedOrigin(text)).toThrow(/origin/);
    },
  );

  it('refuses credentials without quoting them', () => {
    const attempt = () => parseAllowedOrigin('https://user:hunter2@cdn.example');
    expect(attempt).toThrow('credentials');
    expect(attempt).not.toThrow('hunter2');
  });
});
