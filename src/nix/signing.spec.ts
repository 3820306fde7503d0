import { narInfoFixture, narInfoFixtures, nixValues, pathVector, readNixFixture } from 'test/fixtures/nix/fixtures';
import { NixFormatError } from './errors';
import { parseNarInfo } from './narinfo';
import {
  formatPublicKey,
  formatSecretKey,
  generateKeyPair,
  parsePublicKey,
  parseSecretKey,
  signFingerprint,
  signedOnlyBy,
  toPublicKey,
  verifyNarInfo,
  verifySignature,
} from './signing';

const keyText = (file: string) => readNixFixture(`keys/${file}`).toString('utf8');
const secret1 = parseSecretKey(keyText('fixture-1.sk'));
const secret2 = parseSecretKey(keyText('fixture-2.sk'));
const public1 = parsePublicKey(keyText('fixture-1.pk'));
const public2 = parsePublicKey(keyText('fixture-2.pk'));
const catchError = (fn: () => unknown): Error | undefined => {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  return undefined;
};
const sigBy = (sigs: string[], name: string) => sigs.find((sig) => sig.startsWith(`${name}:`)) ?? '';

describe('keys', () => {
  it('reads the key files Nix generated', () => {
    expect(secret1.name).toBe('fixture-1');
    expect(secret1.seed).toHaveLength(32);
    expect(toPublicKey(secret1)).toEqual(public1);
    expect(toPublicKey(secret2)).toEqual(public2);
  });

  it('formats keys exactly as Nix wrote them', () => {
    for (const name of ['fixture-1', 'fixture-2']) {
      expect(formatSecretKey(parseSecretKey(keyText(`${name}.sk`)))).toBe(keyText(`${name}.sk`));
      expect(formatPublicKey(parsePublicKey(keyText(`${name}.pk`)))).toBe(keyText(`${name}.pk`));
    }
  });

  it('tolerates a trailing newline', () => {
    expect(parseSecretKey(`${keyText('fixture-1.sk')}\n`)).toEqual(secret1);
    expect(parsePublicKey(`${keyText('fixture-1.pk')}\n`)).toEqual(public1);
  });

  const [name1, encoded1] = keyText('fixture-1.sk').split(':');
  const mismatched = `${name1}:${Buffer.concat([secret1.seed, public2.key]).toString('base64')}`;
  it.each([
    ['no name', encoded1],
    ['an empty name', `:${encoded1}`],
    ['bad base64', `${name1}:${encoded1.slice(1)}`],
    ['a public key', keyText('fixture-1.pk')],
    ['a public half from another key', mismatched],
  ])('rejects a secret key with %s without quoting it', (_, text) => {
    const error = catchError(() => parseSecretKey(text));
    expect(error).toBeInstanceOf(NixFormatError);
    expect(error?.message).not.toContain(encoded1.slice(4, 20));
    expect(error?.message).not.toContain(name1);
  });

  it.each([
    ['no name', public1.key.toString('base64')],
    ['a secret key', keyText('fixture-1.sk')],
    ['bad base64', `${public1.name}:${public1.key.toString('base64').slice(1)}`],
  ])('rejects a public key with %s', (_, text) => {
    expect(() => parsePublicKey(text)).toThrow(NixFormatError);
  });

  it('generates a pair that round-trips through the key file format', () => {
    const sut = generateKeyPair('cache.example.org-1');
    expect(parseSecretKey(formatSecretKey(sut.secretKey))).toEqual(sut.secretKey);
    expect(parsePublicKey(formatPublicKey(sut.publicKey))).toEqual(sut.publicKey);
    expect(toPublicKey(sut.secretKey)).toEqual(sut.publicKey);
    expect(generateKeyPair('cache.example.org-1').secretKey.seed).not.toEqual(sut.secretKey.seed);
  });

  it.each(['', 'a:b', 'a b'])('refuses to generate a key named %j', (name) => {
    expect(() => generateKeyPair(name)).toThrow(NixFormatError);
  });
});

describe('signFingerprint', () => {
  it.each(nixValues.paths.map((p) => [p.storePath, p]))('reproduces the Sig Nix made for %s', (_, path) => {
    expect(signFingerprint(secret1, path.fingerprint)).toBe(sigBy(path.sigs, 'fixture-1'));
  });

  it('reproduces the second key’s Sig too', () => {
    const path = pathVector('hello.txt');
    expect(signFingerprint(secret2, path.fingerprint)).toBe(sigBy(path.sigs, 'fixture-2'));
  });
});

describe('verifySignature', () => {
  const path = pathVector('withref');
  const sig = sigBy(path.sigs, 'fixture-1');

  it('accepts Nix’s signature with the right key', () => {
    expect(verifySignature([public2, public1], path.fingerprint, sig)).toBe(true);
  });

  it('looks the key up by name', () => {
    expect(verifySignature([public2], path.fingerprint, sig)).toBe(false);
    expect(verifySignature([{ name: 'fixture-1', key: public2.key }], path.fingerprint, sig)).toBe(false);
    expect(verifySignature([{ name: 'other', key: public1.key }], path.fingerprint, sig)).toBe(false);
  });

  it('rejects a changed fingerprint', () => {
    const changed = path.fingerprint.replace(`;${path.narSize};`, `;${path.narSize + 1};`);
    expect(changed).not.toBe(path.fingerprint);
    expect(verifySignature([public1], changed, sig)).toBe(false);
  });

  const raw = Buffer.from(sig.slice('fixture-1:'.length), 'base64');
  const flipped = Buffer.from(raw);
  flipped[10] ^= 1;
  it.each([
    ['a flipped bit', `fixture-1:${flipped.toString('base64')}`],
    ['no name', raw.toString('base64')],
    ['an empty signature', 'fixture-1:'],
    ['bad base64', `fixture-1:${raw.toString('base64').slice(1)}`],
    ['a short signature', `fixture-1:${raw.subarray(1).toString('base64')}`],
  ])('returns false, without throwing, for %s', (_, text) => {
    expect(verifySignature([public1], path.fingerprint, text)).toBe(false);
  });
});

describe('verifyNarInfo', () => {
  it.each(narInfoFixtures().map((f) => [`${f.compression}/${f.hash}`, f.text]))('verifies %s', (_, text) => {
    expect(verifyNarInfo(parseNarInfo(text), [public1])).toBe(true);
    expect(verifyNarInfo(parseNarInfo(text), [])).toBe(false);
  });

  it('accepts any one valid Sig', () => {
    expect(verifyNarInfo(parseNarInfo(narInfoFixture('xz', 'hello.txt')), [public2])).toBe(true);
    expect(verifyNarInfo(parseNarInfo(narInfoFixture('xz', 'withref')), [public2])).toBe(false);
  });

  it('still verifies after the unsigned fields are rewritten', () => {
    const info = parseNarInfo(narInfoFixture('xz', 'withref'));
    const rewritten = { ...info, url: 'nar/x.nar', compression: 'none' as const, fileHash: undefined, fileSize: 1 };
    expect(verifyNarInfo(rewritten, [public1])).toBe(true);
  });

  it('fails when a signed field changes', () => {
    const info = parseNarInfo(narInfoFixture('xz', 'withref'));
    expect(verifyNarInfo({ ...info, narSize: info.narSize + 1 }, [public1])).toBe(false);
    expect(verifyNarInfo({ ...info, references: info.references.slice(1) }, [public1])).toBe(false);
    expect(verifyNarInfo({ ...info, narHash: pathVector('trivial').narHash }, [public1])).toBe(false);
  });
});

describe('signedOnlyBy', () => {
  it('replaces the Sigs with one by the key, identical to Nix’s for the same key', () => {
    const info = parseNarInfo(narInfoFixture('zstd', 'hello.txt'));
    expect(info.sigs).toHaveLength(2);
    const sut = signedOnlyBy(info, secret2);
    expect(sut.sigs).toEqual([sigBy(pathVector('hello.txt').sigs, 'fixture-2')]);
    expect(sut).toEqual({ ...info, sigs: sut.sigs });
    expect(info.sigs).toHaveLength(2);
  });

  it('signs with a generated key that only its public key verifies', () => {
    const { secretKey, publicKey } = generateKeyPair('ncps-1');
    const sut = signedOnlyBy(parseNarInfo(narInfoFixture('xz', 'withref')), secretKey);
    expect(verifyNarInfo(sut, [publicKey])).toBe(true);
    expect(verifyNarInfo(sut, [public1])).toBe(false);
  });
});
