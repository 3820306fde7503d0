import { Test } from '@nestjs/testing';
import { Registry } from 'prom-client';
import { Readable } from 'node:stream';
import { Clock } from 'src/common/clock';
import { BadRequestError, ConflictError, NotFoundError, PayloadTooLargeError } from 'src/common/errors';
import { NCPS_CONFIG } from 'src/config/config.module';
import { NarInfoEntity, NarInfoRepository, NewNarInfo } from 'src/database';
import { LockPort } from 'src/locking';
import { NarInfo, parseNarInfo, serializeNarInfo } from 'src/nix';
import { SigningKeyService } from 'src/signing';
import { StoragePort } from 'src/storage';
import { FakeClock } from 'test/support/fake-clock';
import { fakePath } from 'test/support/fake-path';
import { AccessTracker } from './access-tracker';
import { CacheMetrics } from './cache.metrics';
import { NarInfoFetcher } from './narinfo-fetcher.service';
import { rowFromNarInfo } from './narinfo-record';
import { NarInfoService } from './narinfo.service';
import { NegativeNarInfos } from './negative-narinfos';
import { testConfig } from 'test/support/config';

const OURS = 'ours-1';
const UPLOADED_AT = 1_700_000_000_000;

/** Fakes typed against what NarInfoService uses of each collaborator. */
interface Fakes {
  narInfos: { [K in 'findServedByHash' | 'findByHash' | 'upsert' | 'deleteByHash']: jest.MockedFunction<NarInfoRepository[K]> };
  signing: Pick<SigningKeyService, 'sign' | 'othersOf'>;
  access: { narInfoServed: jest.MockedFunction<AccessTracker['narInfoServed']> };
  fetcher: { fetch: jest.MockedFunction<NarInfoFetcher['fetch']> };
  locks: Pick<LockPort, 'withLock' | 'withReadLock'> & { taken: string[] };
  storage: { head: jest.MockedFunction<StoragePort['head']> };
  negatives: { forget: jest.MockedFunction<NegativeNarInfos['forget']> };
}

function fakes(): Fakes {
  const taken: string[] = [];
  return {
    narInfos: { findServedByHash: jest.fn(), findByHash: jest.fn(), upsert: jest.fn(), deleteByHash: jest.fn() },
    signing: {
      sign: (info: NarInfo) => ({ ...info, sigs: [...info.sigs.filter((s) => !s.startsWith(`${OURS}:`)), `${OURS}:c2ln`] }),
      othersOf: (sigs: readonly string[]) => sigs.filter((s) => !s.startsWith(`${OURS}:`)),
    },
    access: { narInfoServed: jest.fn() },
    fetcher: { fetch: jest.fn() },
    locks: {
      taken,
      withLock: (key, _ttl, fn) => (taken.push(`x ${key}`), fn({ signal: new AbortController().signal })),
      withReadLock: (key, _ttl, fn) => (taken.push(`r ${key}`), fn({ signal: new AbortController().signal })),
    },
    storage: { head: jest.fn() },
    negatives: { forget: jest.fn<Promise<void>, [string]>(async () => undefined) },
  };
}

async function serviceWith(f: Fakes, flags: Record<string, unknown> = {}): Promise<NarInfoService> {
  const config = testConfig(flags);
  const moduleRef = await Test.createTestingModule({
    providers: [
      NarInfoService,
      { provide: NCPS_CONFIG, useValue: config },
      { provide: NarInfoRepository, useValue: f.narInfos },
      { provide: SigningKeyService, useValue: f.signing },
      { provide: AccessTracker, useValue: f.access },
      { provide: NarInfoFetcher, useValue: f.fetcher },
      { provide: LockPort, useValue: f.locks },
      { provide: CacheMetrics, useValue: new CacheMetrics(new Registry()) },
      { provide: StoragePort, useValue: f.storage },
      { provide: NegativeNarInfos, useValue: f.negatives },
      { provide: Clock, useValue: new FakeClock(UPLOADED_AT) },
    ],
  }).compile();
  return moduleRef.get(NarInfoService);
}

const path = fakePath('hello', 1000);
const upstreamSig = 'cache.example-1:dXBzdHJlYW0=';
const served = (verified: boolean): NewNarInfo => rowFromNarInfo(path.hash, { ...path.info, sigs: [upstreamSig] }, { verified, now: 0 });
const body = (text: string) => Readable.from([Buffer.from(text)]);

describe('NarInfoService', () => {
  let f: Fakes;
  let sut: NarInfoService;

  beforeEach(async () => {
    f = fakes();
    sut = await serviceWith(f);
  });

  describe('storedNarInfo', () => {
    it('answers null when the row is absent, recording no access', async () => {
      f.narInfos.findServedByHash.mockResolvedValue(null);
      await expect(sut.storedNarInfo(path.hash)).resolves.toBeNull();
      expect(f.access.narInfoServed).not.toHaveBeenCalled();
    });

    it('serves a verified row signed by us beside the upstream signature, and records the access', async () => {
      f.narInfos.findServedByHash.mockResolvedValue(served(true));
      const info = parseNarInfo((await sut.storedNarInfo(path.hash))!.toString());
      expect(info.sigs).toEqual([upstreamSig, `${OURS}:c2ln`]);
      expect(info.storePath).toBe(path.info.storePath);
      expect(f.access.narInfoServed).toHaveBeenCalledWith(path.hash);
    });

    it('never signs a row that was not verified (an upstream allowed unsigned)', async () => {
      f.narInfos.findServedByHash.mockResolvedValue(served(false));
      expect(parseNarInfo((await sut.storedNarInfo(path.hash))!.toString()).sigs).toEqual([upstreamSig]);
    });

    it('does not sign with --cache-sign-narinfo off', async () => {
      sut = await serviceWith(f, { 'cache-sign-narinfo': false });
      f.narInfos.findServedByHash.mockResolvedValue(served(true));
      expect(parseNarInfo((await sut.storedNarInfo(path.hash))!.toString()).sigs).toEqual([upstreamSig]);
    });
  });

  describe('fetchNarInfo', () => {
    it('answers 404 when no upstream has it', async () => {
      f.fetcher.fetch.mockResolvedValue(null);
      await expect(sut.fetchNarInfo(path.hash)).rejects.toThrow(NotFoundError);
      expect(f.access.narInfoServed).not.toHaveBeenCalled();
    });

    it('serves what the fetcher stored, signed', async () => {
      f.fetcher.fetch.mockResolvedValue(served(true));
      expect(parseNarInfo((await sut.fetchNarInfo(path.hash)).toString()).sigs).toContain(`${OURS}:c2ln`);
      expect(f.access.narInfoServed).toHaveBeenCalledWith(path.hash);
    });

    it('passes a failing upstream on as it is', async () => {
      f.fetcher.fetch.mockRejectedValue(new Error('upstream unreachable'));
      await expect(sut.fetchNarInfo(path.hash)).rejects.toThrow('upstream unreachable');
    });
  });

  describe('putNarInfo', () => {
    beforeEach(() => {
      f.storage.head.mockResolvedValue({ size: 1000 } as Awaited<ReturnType<StoragePort['head']>>);
      f.narInfos.findByHash.mockResolvedValue(null);
    });

    it.each([
      ['not a narinfo', 'hello', BadRequestError],
      ['another path', serializeNarInfo({ ...path.info, storePath: '/nix/store/00000000000000000000000000000000-other' }), BadRequestError],
      ['a URL with a query', serializeNarInfo({ ...path.info, url: `${path.info.url}?x=1` }), BadRequestError],
      ['a URL outside nar/', serializeNarInfo({ ...path.info, url: `x/${path.narName}.nar` }), BadRequestError],
      ['an extension that is not its Compression', serializeNarInfo({ ...path.info, url: `nar/${path.narName}.nar.xz` }), BadRequestError],
    ])('refuses %s with a 400 and writes nothing', async (_what, text, error) => {
      await expect(sut.putNarInfo(path.hash, body(text))).rejects.toThrow(error);
      expect(f.narInfos.upsert).not.toHaveBeenCalled();
      expect(f.locks.taken).toEqual([]);
    });

    it('refuses a body larger than 1 MiB with a 413, by its declared length or by what arrives', async () => {
      await expect(sut.putNarInfo(path.hash, body(path.narinfo), 2 << 20)).rejects.toThrow(PayloadTooLargeError);
      await expect(sut.putNarInfo(path.hash, Readable.from([Buffer.alloc((1 << 20) + 1, 'a')]))).rejects.toThrow(PayloadTooLargeError);
      expect(f.narInfos.upsert).not.toHaveBeenCalled();
    });

    it('answers 409 when its NAR is not stored', async () => {
      f.storage.head.mockResolvedValue(null);
      await expect(sut.putNarInfo(path.hash, body(path.narinfo))).rejects.toThrow(ConflictError);
      expect(f.narInfos.upsert).not.toHaveBeenCalled();
    });

    it('stores it under both locks without our own signature, and forgets a remembered miss', async () => {
      const text = serializeNarInfo({ ...path.info, sigs: [upstreamSig, `${OURS}:b2xk`] });
      await sut.putNarInfo(path.hash, body(text));
      expect(f.locks.taken).toEqual([`x download:narinfo:${path.hash}`, `r cache:nar:${path.narName}`]);
      expect(f.negatives.forget).toHaveBeenCalledWith(path.hash);
      expect(f.narInfos.upsert).toHaveBeenCalledWith(expect.objectContaining({ hash: path.hash, sigs: upstreamSig }));
    });

    it("dates a stored upload by the clock's time", async () => {
      await sut.putNarInfo(path.hash, body(path.narinfo));
      expect(f.narInfos.upsert).toHaveBeenCalledWith(expect.objectContaining({ createdAt: UPLOADED_AT, lastAccessedAt: UPLOADED_AT }));
    });

    it('leaves an identical upstream row alone, and refuses to replace a different one', async () => {
      const upstreamRow: NarInfoEntity = { id: 1, ...served(true), upstreamUrl: 'https://cache.example' };
      f.narInfos.findByHash.mockResolvedValue(upstreamRow);
      await sut.putNarInfo(path.hash, body(path.narinfo));
      expect(f.narInfos.upsert).not.toHaveBeenCalled();
      const changed = serializeNarInfo({ ...path.info, references: [`${path.hash}-hello`] });
      await expect(sut.putNarInfo(path.hash, body(changed))).rejects.toThrow(ConflictError);
      expect(f.narInfos.upsert).not.toHaveBeenCalled();
    });
  });

  describe('deleteNarInfo', () => {
    it('answers 404 when nothing was deleted', async () => {
      f.narInfos.deleteByHash.mockResolvedValue(false);
      await expect(sut.deleteNarInfo(path.hash)).rejects.toThrow(NotFoundError);
    });

    it('deletes, and the next hit is rendered again rather than served from memory', async () => {
      f.narInfos.findServedByHash.mockResolvedValue(served(true));
      await sut.storedNarInfo(path.hash);
      f.narInfos.deleteByHash.mockResolvedValue(true);
      await sut.deleteNarInfo(path.hash);
      expect(f.narInfos.deleteByHash).toHaveBeenCalledWith(path.hash);
      f.narInfos.findServedByHash.mockResolvedValue(null);
      await expect(sut.storedNarInfo(path.hash)).resolves.toBeNull();
    });
  });
});
