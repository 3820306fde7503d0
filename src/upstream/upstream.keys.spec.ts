import { generateKeyPair } from 'src/nix';
import { assignPublicKeys } from './upstream.keys';

const key = (name: string) => generateKeyPair(name).publicKey;
const nixos = { url: 'https://cache.nixos.org', hostname: 'cache.nixos.org' };
const corp = { url: 'https://nix.corp.example/cache', hostname: 'nix.corp.example' };

describe('assignPublicKeys', () => {
  it('gives a key named <host>-<N> to the upstream on that host only', () => {
    const nixosKey = key('cache.nixos.org-1');
    const corpKey = key('nix.corp.example-2');
    const sut = assignPublicKeys([nixos, corp], [nixosKey, corpKey]);
    expect(sut.keys).toEqual([[nixosKey], [corpKey]]);
    expect(sut.warnings).toEqual([]);
  });

  it('gives a key that matches no upstream host to every upstream', () => {
    const nixosKey = key('cache.nixos.org-1');
    const shared = key('my-signing-key');
    const stranger = key('other.example-1');
    const sut = assignPublicKeys([nixos, corp], [nixosKey, shared, stranger]);
    expect(sut.keys[0]).toEqual([nixosKey, shared, stranger]);
    expect(sut.keys[1]).toEqual([shared, stranger]);
  });

  it('matches host names without regard to case, and needs the -<N> suffix', () => {
    const upper = key('Cache.NixOS.org-12');
    const bare = key('cache.nixos.org');
    const sut = assignPublicKeys([nixos, corp], [upper, bare]);
    expect(sut.keys[0]).toEqual([upper, bare]);
    expect(sut.keys[1]).toEqual([bare]); // no -<N>: matches no host, so applies to all
  });

  it('gives one host key to every upstream on that host', () => {
    const other = { url: 'https://cache.nixos.org/mirror', hostname: 'cache.nixos.org' };
    const nixosKey = key('cache.nixos.org-1');
    expect(assignPublicKeys([nixos, other], [nixosKey]).keys).toEqual([[nixosKey], [nixosKey]]);
  });

  it('names in a warning each upstream left without a key', () => {
    const sut = assignPublicKeys([nixos, corp], [key('cache.nixos.org-1')]);
    expect(sut.keys[1]).toEqual([]);
    expect(sut.warnings).toEqual([
      'upstream https://nix.corp.example/cache has no public key: its narinfos are not verified',
    ]);
  });

  it('warns about every upstream when no key is configured', () => {
    expect(assignPublicKeys([nixos, corp], []).warnings).toHaveLength(2);
  });
});
