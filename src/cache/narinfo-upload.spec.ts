import { ConflictError, ForbiddenError } from 'src/common/errors';
import { NarInfoEntity } from 'src/database';
import { NarInfo, generateKeyPair, signedOnlyBy } from 'src/nix';
import { rowFromNarInfo } from './narinfo-record';
import { assertTrustedUpload, uploadOutcome } from './narinfo-upload';

const HASH = '0'.repeat(32);
const info: NarInfo = {
  storePath: `/nix/store/${HASH}-hello`,
  url: `nar/${'0' + '1'.repeat(51)}.nar.xz`,
  compression: 'xz',
  fileHash: `sha256:${'0' + '1'.repeat(51)}`,
  fileSize: 100,
  narHash: `sha256:${'0' + '2'.repeat(51)}`,
  narSize: 300,
  references: [`${'3'.repeat(32)}-dep`],
  sigs: [],
};

function stored(narinfo: NarInfo, upstreamUrl?: string): NarInfoEntity {
  return Object.assign(new NarInfoEntity(), { id: 1, ...rowFromNarInfo(HASH, narinfo, { upstreamUrl, now: 0 }) });
}

describe('assertTrustedUpload', () => {
  const trusted = generateKeyPair('uploader-1');
  const stranger = generateKeyPair('stranger-1');
  // Same name as the trusted key, other key material: the name alone must not be enough.
  const impostor = generateKeyPair('uploader-1');

  it('lets anything through when trusted signatures are not required', () => {
    expect(() => assertTrustedUpload(info, false, [])).not.toThrow();
  });

  it('accepts a narinfo signed by a trusted key, among other signatures', () => {
    const signed = signedOnlyBy(info, trusted.secretKey);
    const both = { ...signed, sigs: [...signedOnlyBy(info, stranger.secretKey).sigs, ...signed.sigs] };
    expect(() => assertTrustedUpload(both, true, [trusted.publicKey])).not.toThrow();
  });

  it.each([
    ['unsigned', info, /not signed/],
    ['signed by another key', signedOnlyBy(info, stranger.secretKey), /no signature .* verifies/],
    ['signed by a key of the same name', signedOnlyBy(info, impostor.secretKey), /no signature .* verifies/],
    ['signed, then altered', { ...signedOnlyBy(info, trusted.secretKey), narSize: info.narSize + 1 }, /no signature .* verifies/],
  ])('refuses with 403 a narinfo %s', (_what, narinfo, message) => {
    let thrown: unknown;
    try {
      assertTrustedUpload(narinfo, true, [trusted.publicKey]);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(ForbiddenError);
    expect((thrown as ForbiddenError).status).toBe(403);
    expect((thrown as ForbiddenError).message).toMatch(message);
  });
});

describe('uploadOutcome', () => {
  it('stores when nothing is there, or over an earlier upload', () => {
    expect(uploadOutcome(null, info)).toBe('store');
    expect(uploadOutcome(stored({ ...info, narSize: 1 }), info)).toBe('store');
  });

  it('leaves an upstream narinfo unchanged when the upload says the same (URL, compression and signatures may differ)', () => {
    const upload = { ...info, url: `nar/${'0' + '4'.repeat(51)}.nar.zst`, compression: 'zstd' as const, sigs: ['x-1:abc'] };
    expect(uploadOutcome(stored(info, 'http://upstream.example'), upload)).toBe('unchanged');
    const reordered = { ...info, references: [...info.references, `${'5'.repeat(32)}-b`] };
    expect(uploadOutcome(stored(reordered, 'http://up'), { ...reordered, references: [...reordered.references].reverse() })).toBe(
      'unchanged',
    );
  });

  it.each([
    ['NarHash', { narHash: `sha256:${'0' + '6'.repeat(51)}` }],
    ['NarSize', { narSize: 301 }],
    ['References', { references: [] }],
    ['CA', { ca: `fixed:r:sha256:${'0' + '7'.repeat(51)}` }],
  ])('refuses with 409 to replace an upstream narinfo with another %s', (_field, change) => {
    expect(() => uploadOutcome(stored(info, 'http://upstream.example'), { ...info, ...change })).toThrow(ConflictError);
  });
});
