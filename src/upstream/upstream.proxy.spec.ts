import { proxyFor, proxySettings } from './upstream.proxy';

describe('proxyFor', () => {
  const settings = proxySettings({ httpProxy: 'http://plain:3128', httpsProxy: 'http://tunnel:3129', noProxy: ['internal.example'] });

  it('picks the proxy by the scheme of the request, and none for NO_PROXY hosts', () => {
    expect(proxyFor(new URL('http://cache.example/x.narinfo'), settings)?.label).toBe('plain:3128');
    expect(proxyFor(new URL('https://cache.example/x.narinfo'), settings)?.label).toBe('tunnel:3129');
    expect(proxyFor(new URL('https://cache.internal.example/x.narinfo'), settings)).toBeUndefined();
    expect(proxyFor(new URL('https://cache.example/'), proxySettings({ httpProxy: 'http://plain:3128', noProxy: [] }))).toBeUndefined();
  });
});
