import { parseUpstreamUrl } from './upstream-url';

describe('parseUpstreamUrl', () => {
  it('removes ?priority= from the base and keeps it as an override', () => {
    const sut = parseUpstreamUrl('https://cache.example.org/?priority=30');
    expect(sut).toEqual({
      url: 'https://cache.example.org',
      origin: 'https://cache.example.org',
      host: 'cache.example.org',
      hostname: 'cache.example.org',
      priorityOverride: 30,
      maxConnections: 64,
    });
  });

  it('reads ?max-connections= (1 to 1024) and keeps it out of the base', () => {
    const sut = parseUpstreamUrl('http://[::1]:8080/cache?max-connections=2&priority=10');
    expect(sut).toMatchObject({ url: 'http://[::1]:8080/cache', host: '[::1]:8080', maxConnections: 2, priorityOverride: 10 });
    expect(parseUpstreamUrl('https://cache.example/?max-connections=1024').maxConnections).toBe(1024);
  });

  it.each(['0', '1025', '-1', '2.5', 'many', ''])('refuses ?max-connections=%p without quoting the URL', (value) => {
    const attempt = () => parseUpstreamUrl(`https://user:hunter2@cache.example/?max-connections=${value}`);
    expect(attempt).toThrow('max-connections');
    expect(attempt).not.toThrow('hunter2');
  });

  it('keeps the path, drops trailing slashes and other query parameters, and lower-cases the host name', () => {
    const sut = parseUpstreamUrl('http://Cache.Example.org:8080/some/prefix//?trusted=1');
    expect(sut.url).toBe('http://cache.example.org:8080/some/prefix');
    expect(sut.host).toBe('cache.example.org:8080');
    expect(sut.origin).toBe('http://cache.example.org:8080');
    expect(sut.hostname).toBe('cache.example.org');
    expect(sut.priorityOverride).toBeUndefined();
  });

  it('turns credentials in the URL into a Basic header and keeps them out of the URL', () => {
    const sut = parseUpstreamUrl('https://al%40ice:s3cr%3Aet@private.example/');
    expect(sut.url).toBe('https://private.example');
    expect(sut.authorization).toBe(`Basic ${Buffer.from('al@ice:s3cr:et').toString('base64')}`);
  });

  it.each(['-1', '1.5', 'high', ''])('refuses ?priority=%p without quoting the URL', (priority) => {
    const attempt = () => parseUpstreamUrl(`https://user:hunter2@cache.example/?priority=${priority}`);
    expect(attempt).toThrow('priority');
    expect(attempt).not.toThrow('hunter2');
  });

  it.each(['ftp://cache.example', 'not a url', 'file:///srv/cache'])('refuses %p', (url) => {
    expect(() => parseUpstreamUrl(url)).toThrow();
  });
});
