import { Logger } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { NCPS_CONFIG } from 'src/config/config.module';
import { ConfigRepository } from 'src/database';
import { NarInfo, formatSecretKey, generateKeyPair, parseNarInfo, parsePublicKey, verifyNarInfo } from 'src/nix';
import { testConfig } from 'test/support/config';
import { narInfoFixture } from 'test/fixtures/nix/fixtures';
import { SecretKeyFile } from './secret-key.file';
import { SigningKeyService } from './signing-key.service';

interface Fakes {
  store: { getOrInsert: jest.MockedFunction<ConfigRepository['getOrInsert']> };
  keyFile: { read: jest.MockedFunction<SecretKeyFile['read']> };
}

function fakes(): Fakes {
  return {
    // An empty database: the candidate offered is the one kept.
    store: { getOrInsert: jest.fn(async (_key: string, value: string) => value) },
    keyFile: { read: jest.fn().mockRejectedValue(new Error('no file expected')) },
  };
}

async function serviceWith(f: Fakes, flags: Record<string, unknown> = {}): Promise<SigningKeyService> {
  const moduleRef = await Test.createTestingModule({
    providers: [
      SigningKeyService,
      { provide: NCPS_CONFIG, useValue: testConfig({ 'cache-hostname': 'unit', ...flags }) },
      { provide: ConfigRepository, useValue: f.store },
      { provide: SecretKeyFile, useValue: f.keyFile },
    ],
  }).compile();
  const service = moduleRef.get(SigningKeyService);
  await service.onModuleInit();
  return service;
}

describe('SigningKeyService key', () => {
  let log: jest.SpyInstance;
  beforeEach(() => {
    log = jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
  });
  afterEach(() => jest.restoreAllMocks());

  it('generates <hostname>-1 on an empty database, stores it, and says so', async () => {
    const f = fakes();
    const sut = await serviceWith(f);
    expect(sut.keyName).toBe('unit-1');
    expect(f.store.getOrInsert).toHaveBeenCalledWith('secret_key', expect.stringMatching(/^unit-1:/));
    expect(log).toHaveBeenCalledWith('generated a new signing key and stored it in the database');
    expect(f.keyFile.read).not.toHaveBeenCalled();
  });

  it('signs with the key already in the database (another instance made it), generating none', async () => {
    const f = fakes();
    const kept = generateKeyPair('elsewhere-1');
    f.store.getOrInsert.mockResolvedValue(formatSecretKey(kept.secretKey));
    const sut = await serviceWith(f);
    expect(sut.keyName).toBe('elsewhere-1');
    expect(parsePublicKey(sut.publicKey).key).toEqual(kept.publicKey.key);
    expect(log).not.toHaveBeenCalledWith('generated a new signing key and stored it in the database');
  });

  it('prefers --cache-secret-key-path over the database, and refuses a file that is not a secret key', async () => {
    const f = fakes();
    const fromFile = generateKeyPair('file-key-1');
    f.keyFile.read.mockResolvedValueOnce(`${formatSecretKey(fromFile.secretKey)}\n`);
    const sut = await serviceWith(f, { 'cache-secret-key-path': '/etc/ncps/key' });
    expect(f.keyFile.read).toHaveBeenCalledWith('/etc/ncps/key');
    expect(sut.keyName).toBe('file-key-1');
    expect(f.store.getOrInsert).not.toHaveBeenCalled();

    f.keyFile.read.mockResolvedValueOnce('not a key');
    await expect(serviceWith(f, { 'cache-secret-key-path': '/etc/ncps/key' })).rejects.toThrow(
      '--cache-secret-key-path: /etc/ncps/key is not a Nix secret key (name:base64)',
    );
  });
});

describe('SigningKeyService.sign', () => {
  let sut: SigningKeyService;
  let info: NarInfo;

  beforeAll(async () => {
    Logger.overrideLogger(false);
    sut = await serviceWith(fakes());
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
