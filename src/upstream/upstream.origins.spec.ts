import { parseNetrc } from './upstream.netrc';
import { basicAuthorization, parseUpstreamUrl } from 'src/net';
import { credentialsFor, mayFetch, mayRedirect } from './upstream.origins';

const url = (text: string) => new URL(text);

describe('mayFetch and mayRedirect', () => {
  const home = 'https://cache.example';
  const allowed = new Set(['https://cdn.example', 'http://mirror.example:8080']);

  it.each([
    ['https://cache.example/nar/x.nar.xz', true],
    ['https://CACHE.example:443/nar/x', true],
    ['https://cdn.example/n/x?sig=1', true],
    ['http://mirror.example:8080/x', true],
    ['http://cache.example/nar/x', false], // another scheme is another origin
    ['https://cache.example:8443/nar/x', false], // another port too
    ['http://mirror.example/x', false],
    ['http://127.0.0.1:9999/secret', false],
    ['http://169.254.169.254/latest/meta-data', false],
    ['file:///etc/passwd', false],
  ])('%p: %p', (target, expected) => {
    expect(mayFetch(url(target), home, allowed)).toBe(expected);
  });

  it('allows only the allowed origins when the request belongs to no configured upstream', () => {
    expect(mayFetch(url('https://cache.example/x'), undefined, allowed)).toBe(false);
    expect(mayFetch(url('https://cdn.example/x'), undefined, allowed)).toBe(true);
  });

  it('never follows a redirect from https down to http, even to an allowed origin', () => {
    expect(mayRedirect(url('https://cache.example/a'), url('http://mirror.example:8080/x'), home, allowed)).toBe(false);
    expect(mayRedirect(url('http://mirror.example:8080/a'), url('http://mirror.example:8080/x'), home, allowed)).toBe(true);
    expect(mayRedirect(url('https://cache.example/a'), url('https://cdn.example/x'), home, allowed)).toBe(true);
    expect(mayRedirect(url('https://cache.example/a'), url('https://evil.example/x'), home, allowed)).toBe(false);
  });
});

describe('credentialsFor', () => {
  const netrc = parseNetrc('machine cache.example login alice password a-pw\ndefault login dflt password d-pw\n');
  const upstreams = [
    parseUpstreamUrl('https://cache.example/prefix'),
    parseUpstreamUrl('https://other.example'),
    parseUpstreamUrl('http://bob:b-pw@plain.example:8080'),
  ];
  const alice = basicAuthorization('alice', 'a-pw');

  it("gives a configured upstream's origin its netrc machine entry, on any path", () => {
    expect(credentialsFor(url('https://cache.example/prefix/x.narinfo'), upstreams, netrc)).toBe(alice);
    expect(credentialsFor(url('https://cache.example/elsewhere'), upstreams, netrc)).toBe(alice);
  });

  it('gives the netrc default entry only to a configured upstream without a machine entry', () => {
    expect(credentialsFor(url('https://other.example/x'), upstreams, netrc)).toBe(basicAuthorization('dflt', 'd-pw'));
    expect(credentialsFor(url('https://cdn.example/x'), upstreams, netrc)).toBeUndefined();
    expect(credentialsFor(url('http://127.0.0.1:9999/secret'), upstreams, netrc)).toBeUndefined();
  });

  it('never sends the credentials of an https upstream over http, nor to another port', () => {
    expect(credentialsFor(url('http://cache.example/x'), upstreams, netrc)).toBeUndefined();
    expect(credentialsFor(url('https://cache.example:8443/x'), upstreams, netrc)).toBeUndefined();
  });

  it('prefers the credentials written in the upstream URL, for that origin only', () => {
    expect(credentialsFor(url('http://plain.example:8080/x'), upstreams, netrc)).toBe(basicAuthorization('bob', 'b-pw'));
    expect(credentialsFor(url('http://plain.example:8081/x'), upstreams, netrc)).toBeUndefined();
  });

  it('sends nothing without netrc or URL credentials', () => {
    expect(credentialsFor(url('https://cache.example/x'), upstreams, null)).toBeUndefined();
  });
});
