import { NoProxy, parseProxyUrl } from './proxy';

describe('parseProxyUrl', () => {
  it('reads host, port and credentials, which become Proxy-Authorization', () => {
    expect(parseProxyUrl('http://al%40ice:s3cr%3At@proxy.corp:3128/')).toEqual({
      hostname: 'proxy.corp',
      port: 3128,
      label: 'proxy.corp:3128',
      authorization: `Basic ${Buffer.from('al@ice:s3cr:t').toString('base64')}`,
    });
  });

  it('takes a bare host[:port] as http:// and defaults the port to 80; IPv6 loses its brackets', () => {
    expect(parseProxyUrl('proxy.corp')).toEqual({ hostname: 'proxy.corp', port: 80, label: 'proxy.corp' });
    expect(parseProxyUrl('http://[::1]:8080')).toEqual({ hostname: '::1', port: 8080, label: '[::1]:8080' });
  });

  it.each([
    'https://user:hunter2@proxy.corp',
    'socks5://user:hunter2@proxy.corp:1080',
    'http://user:hunter2@proxy.corp/path',
    'http://user:hunter2@',
  ])('refuses %p without quoting its credentials', (url) => {
    const attempt = () => parseProxyUrl(url);
    expect(attempt).toThrow();
    expect(attempt).not.toThrow('hunter2');
  });
});

describe('NoProxy (curl semantics)', () => {
  const bypasses = (noProxy: string[], url: string) => new NoProxy(noProxy).bypasses(new URL(url));

  it.each([
    [['*'], 'https://anything.example'],
    [['example.com'], 'https://example.com'],
    [['example.com'], 'https://cache.EXAMPLE.com/x'],
    [['.example.com'], 'https://example.com'],
    [['.example.com'], 'https://a.b.example.com'],
    [['*.example.com'], 'https://cache.example.com'],
    [['Example.COM.'], 'http://example.com.'],
    [['other.org, example.com'], 'https://example.com'],
    [['other.org example.com'], 'https://example.com'],
    [['example.com:8080'], 'http://example.com:8080'],
    [['example.com:443'], 'https://example.com'],
    [['127.0.0.1'], 'http://127.0.0.1:5000'],
    [['127.0.0.1:5000'], 'http://127.0.0.1:5000'],
    [['10.0.0.0/8'], 'http://10.20.30.40'],
    [['::1'], 'http://[::1]:8080'],
    [['[::1]:8080'], 'http://[::1]:8080'],
    [['0:0:0:0:0:0:0:1'], 'http://[::1]'],
    [['fd00::/8'], 'http://[fd12::5]'],
  ])('%p lets %p go direct', (noProxy, url) => {
    expect(bypasses(noProxy, url)).toBe(true);
  });

  it.each([
    [[], 'https://example.com'],
    [['example.com'], 'https://notexample.com'],
    [['example.com'], 'https://example.com.evil.org'],
    [['cache.example.com'], 'https://example.com'],
    [['example.com:8080'], 'http://example.com'],
    [['example.com:80'], 'https://example.com'],
    [['127.0.0.1'], 'http://127.0.0.2'],
    [['127.0.0.1:5000'], 'http://127.0.0.1:5001'],
    [['0.0.1'], 'http://127.0.0.1'],
    [['10.0.0.0/8'], 'http://11.0.0.1'],
    [['10.0.0.0/8'], 'http://10.example'],
    [['::1'], 'http://[::2]'],
    [['[::1]:8080'], 'http://[::1]:8081'],
    [['localhost'], 'http://127.0.0.1'],
  ])('%p sends %p through the proxy', (noProxy, url) => {
    expect(bypasses(noProxy, url)).toBe(false);
  });

  it.each(['example.com:http', 'example.com:0', 'a:b:c', '10.0.0.0/33', 'example.com/8', '.', '[::1]:99999'])(
    'refuses %p, naming it',
    (entry) => {
      expect(() => new NoProxy([entry])).toThrow(entry);
    },
  );
});
