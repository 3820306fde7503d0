import { resolveNarUrl } from './upstream.url';

describe('resolveNarUrl', () => {
  const base = 'https://cache.example/prefix';

  it.each([
    ['nar/1abc.nar.xz', 'https://cache.example/prefix/nar/1abc.nar.xz'],
    ['nar/0b1c2d3e-aaaa-bbbb-cccc-123456789abc.nar.zst', 'https://cache.example/prefix/nar/0b1c2d3e-aaaa-bbbb-cccc-123456789abc.nar.zst'],
    ['nar/x.nar?hash=abc', 'https://cache.example/prefix/nar/x.nar?hash=abc'],
    ['nar/a-b.nar?hash=abc&x=%2F', 'https://cache.example/prefix/nar/a-b.nar?hash=abc&x=%2F'],
    ['https://cdn.example/n/x.nar.xz?sig=1', 'https://cdn.example/n/x.nar.xz?sig=1'],
  ])('resolves %p like Nix (relative to the base, query kept)', (narUrl, expected) => {
    expect(resolveNarUrl(base, narUrl)).toBe(expected);
  });

  it.each(['file:///etc/passwd', 's3://bucket/nar/x.nar', 'javascript:alert(1)'])('refuses %p', (narUrl) => {
    expect(resolveNarUrl(base, narUrl)).toBeNull();
  });
});
