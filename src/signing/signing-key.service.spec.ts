import { Logger } from '@nestjs/common';
import { NcpsConfig } from 'src/config/config';
import { ConfigRepository } from 'src/database';
import { NarInfo, parseNarInfo, parsePublicKey, verifyNarInfo } from 'src/nix';
import { narInfoFixture } from 'test/fixtures/nix/fixtures';
import { SigningKeyService } from './signing-key.service';

describe('SigningKeyService.sign', () => {
  let sut: SigningKeyService;
  let info: NarInfo;

  beforeAll(async () => {
    Logger.overrideLogger(false);
    const config = { cache: { secretKeyPath: undefined, hostname: 'unit' } } as unknown as NcpsConfig;
    const store = { getOrInsert: async (_key: string, value: string) => value } as unknown as ConfigRepository;
    sut = new SigningKeyService(config, store);
    await sut.onModuleInit();
    info = parseNarInfo(narInfoFixture('xz', 'hello.txt'));
  });

  const ours = (signed: NarInfo) => signed.sigs.filter((sig) => sig.startsWith(`${sut.keyName}:`));

  it('adds exactly one signature of ours beside the others, replacing a stale one of ours', () => {
    const upstreamSigs = info.sigs.filter((sig) => !sig.startsWith(`${sut.keyName}:`));
    const signed = sut.sign({ ...info, sigs: [...upstreamSigs, `${sut.keyName}:c3RhbGU=`] });
    expect(signed.sigs.slice(0, upstreamSigs.length)).toEqual(upstreamSigs);
    expect(ours(signed)).toHaveLength(1);
    expect(ours(signed)[0]).not.toBe(`${sut.keyName}:c3RhbGU=`);
    expect(verifyNarInfo({ ...signed, sigs: ours(signed) }, [parsePublicKey(sut.publicKey)])).toBe(true);
  });

  it('gives every content its own valid signature, however many narinfos it has signed before', () => {
    const key = [parsePublicKey(sut.publicKey)];
    const variant = (n: number): NarInfo => ({ ...info, narSize: info.narSize + n, sigs: [] });
    const first = ours(sut.sign(variant(0)))[0];
    // More distinct narinfos than the service remembers signatures of: the first one is forgotten.
    for (let n = 1; n <= 10_001; n += 1) sut.sign(variant(n));
    const again = ours(sut.sign(variant(0)))[0];
    expect(again).toBe(first); // Ed25519 is deterministic
    const other = ours(sut.sign(variant(1)))[0];
    expect(other).not.toBe(first);
    expect(verifyNarInfo({ ...variant(0), sigs: [first] }, key)).toBe(true);
    expect(verifyNarInfo({ ...variant(1), sigs: [other] }, key)).toBe(true);
    expect(verifyNarInfo({ ...variant(1), sigs: [first] }, key)).toBe(false);
  });
});
