import { generateKeyPair } from 'src/nix';
import { parseUpstreamUrl } from 'src/net';
import { assignPublicKeys, upstreamTrust } from './upstream-trust';

const key = (name: string) => generateKeyPair(name).publicKey;
const nixos = { url: 'https://cache.nixos.org', hostname: 'cache.nixos.org' };
const corp = { url: 'https://nix.corp.example/cache', hostname: 'nix.corp.example' };

describe('assignPublicKeys', () => {
  it('gives a key named <host>-<N> to the upstream on that host only', () => {
    const nixosKey = key('cache.nixos.org-1');
    const corpKey = key('nix.corp.example-2');
    const sut = assignPublicKeys([nixos, corp], [nixosKey, corpKey]);
    expect(sut).toEqual([[nixosKey], [corpKey]]);
  });

  it('gives a key that matches no upstream host to every upstream', () => {
    const nixosKey = key('cache.nixos.org-1');
    const shared = key('my-signing-key');
    const stranger = key('other.example-1');
    const sut = assignPublicKeys([nixos, corp], [nixosKey, shared, stranger]);
    expect(sut[0]).toEqual([nixosKey, shared, stranger]);
    expect(sut[1]).toEqual([shared, stranger]);
  });

  it('matches host names without regard to case, and needs the -<N> suffix', () => {
    const upper = key('Cache.NixOS.org-12');
    const bare = key('cache.nixos.org');
    const sut = assignPublicKeys([nixos, corp], [upper, bare]);
    expect(sut[0]).toEqual([upper, bare]);
    expect(sut[1]).toEqual([bare]); // no -<N>: matches no host, so applies to all
  });

  it('gives one host key to every upstream on that host', () => {
    const other = { url: 'https://cache.nixos.org/mirror', hostname: 'cache.nixos.org' };
    const nixosKey = key('cache.nixos.org-1');
    expect(assignPublicKeys([nixos, other], [nixosKey])).toEqual([[nixosKey], [nixosKey]]);
  });

  it('leaves an upstream whose host no key names, when every key names a host, without a key', () => {
    expect(assignPublicKeys([nixos, corp], [key('cache.nixos.org-1')])[1]).toEqual([]);
  });
});

describe('upstreamTrust', () => {
  const targets = ['https://cache.nixos.org', 'https://user:pw@nix.corp.example/cache/?priority=3'].map(parseUpstreamUrl);
  const nixosKey = key('cache.nixos.org-1');

  it('refuses an upstream left without a key, saying how to fix it', () => {
    const attempt = () => upstreamTrust(targets, [nixosKey], []);
    expect(attempt).toThrow(/upstream https:\/\/nix.corp.example\/cache has no public key/);
    expect(attempt).toThrow('--cache-upstream-allow-unsigned=https://nix.corp.example/cache');
    expect(attempt).not.toThrow('pw');
  });

  it('accepts it when allowed unsigned, named as configured (query and credentials ignored), with a warning', () => {
    const sut = upstreamTrust(targets, [nixosKey], ['https://user:pw@nix.corp.example/cache/?priority=3']);
    expect(sut.keys).toEqual([[nixosKey], []]);
    expect(sut.warnings).toEqual([
      'upstream https://nix.corp.example/cache has no public key: its narinfos are not verified, and served without our signature',
    ]);
    expect(upstreamTrust(targets, [nixosKey], ['https://nix.corp.example/cache']).keys[1]).toEqual([]);
  });

  it('refuses an allowance that names no upstream, and warns about one that changes nothing', () => {
    expect(() => upstreamTrust(targets, [nixosKey], ['https://nix.corp.example/cache', 'https://typo.example'])).toThrow(
      '--cache-upstream-allow-unsigned: https://typo.example is not one of the upstreams',
    );
    expect(() => upstreamTrust(targets, [nixosKey], ['nonsense'])).toThrow('--cache-upstream-allow-unsigned');
    const sut = upstreamTrust(targets, [key('shared')], ['https://cache.nixos.org']);
    expect(sut.warnings).toEqual([
      '--cache-upstream-allow-unsigned=https://cache.nixos.org changes nothing: that upstream has a public key',
    ]);
  });

  it('needs no allowance when every upstream has a key', () => {
    expect(upstreamTrust(targets, [key('shared')], [])).toEqual({ keys: [[expect.anything()], [expect.anything()]], warnings: [] });
  });
});
