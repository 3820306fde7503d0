import { Logger } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { Clock } from 'src/common/clock';
import { NCPS_CONFIG } from 'src/config/config.module';
import { testConfig } from 'test/support/config';
import { FakeClock } from 'test/support/fake-clock';
import { NegativeNarInfoRepository } from 'src/database';
import { NegativeNarInfos } from './negative-narinfos';

const TTL_MS = 60_000;
const A = 'a'.repeat(32);
const B = 'b'.repeat(32);

/** The shared table as a map (hash → expiry), with every call recorded. */
function fakeRows() {
  const table = new Map<string, number>();
  const rows = {
    table,
    expiryOf: jest.fn(async (hash: string) => table.get(hash) ?? null),
    remember: jest.fn(async (hash: string, expiresAt: number) => void table.set(hash, expiresAt)),
    forget: jest.fn(async (hash: string) => table.delete(hash)),
    sweepExpired: jest.fn(async (now: number) => {
      const expired = [...table].filter(([, expiresAt]) => expiresAt <= now);
      for (const [hash] of expired) table.delete(hash);
      return expired.length;
    }),
  };
  return rows;
}

describe('NegativeNarInfos', () => {
  let rows: ReturnType<typeof fakeRows>;
  let clock: FakeClock;
  /** The service as Nest builds it, over the fake table, with a negative TTL of `ttlMs`. */
  const make = async (ttlMs = TTL_MS): Promise<NegativeNarInfos> => {
    const repository: Pick<NegativeNarInfoRepository, 'expiryOf' | 'remember' | 'forget' | 'sweepExpired'> = rows;
    const moduleRef = await Test.createTestingModule({
      providers: [
        NegativeNarInfos,
        { provide: NCPS_CONFIG, useValue: testConfig({ 'cache-negative-ttl': `${ttlMs}ms` }) },
        { provide: NegativeNarInfoRepository, useValue: repository },
        { provide: Clock, useValue: clock },
      ],
    }).compile();
    return moduleRef.get(NegativeNarInfos);
  };

  beforeEach(() => {
    clock = new FakeClock(1_000_000);
    jest.spyOn(Logger.prototype, 'debug').mockImplementation(() => undefined);
    rows = fakeRows();
  });

  afterEach(() => jest.restoreAllMocks());

  it('remembers a miss here and in the database until the TTL is up, then not', async () => {
    const sut = await make();
    await sut.remember(A);

    expect(rows.table.get(A)).toBe(1_000_000 + TTL_MS);
    expect(sut.knownHere(A)).toBe(true);
    await expect(sut.check(A)).resolves.toBe('remembered');
    expect(rows.expiryOf).not.toHaveBeenCalled(); // known here: no query
    clock.set(1_000_000 + TTL_MS - 1);
    expect(sut.knownHere(A)).toBe(true);
    clock.set(1_000_000 + TTL_MS);
    expect(sut.knownHere(A)).toBe(false);
    await expect(sut.check(A)).resolves.toBe('expired');
  });

  it('takes a miss another instance remembered from the database, and keeps it here for the rest of its TTL', async () => {
    rows.table.set(B, 1_000_000 + 5_000);
    const sut = await make();

    expect(sut.knownHere(B)).toBe(false);
    await expect(sut.check(B)).resolves.toBe('remembered');
    expect(sut.knownHere(B)).toBe(true);
    clock.set(1_000_000 + 5_000);
    expect(sut.knownHere(B)).toBe(false);
    await expect(sut.check(A)).resolves.toBe('none');
  });

  it('forgets a miss here and in the database', async () => {
    const sut = await make();
    await sut.remember(A);

    await sut.forget(A);

    expect(sut.knownHere(A)).toBe(false);
    expect(rows.table.has(A)).toBe(false);
    await expect(sut.check(A)).resolves.toBe('none');
  });

  it('with a TTL of 0 remembers nothing and reads nothing', async () => {
    const sut = await make(0);
    expect(sut.enabled).toBe(false);

    await sut.remember(A);
    await expect(sut.check(A)).resolves.toBe('none');
    await sut.forget(A);

    expect(sut.knownHere(A)).toBe(false);
    for (const call of [rows.remember, rows.expiryOf, rows.forget, rows.sweepExpired]) expect(call).not.toHaveBeenCalled();
  });

  it('keeps a miss here when the database write fails, and says so', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    rows.remember.mockRejectedValueOnce(new Error('database is down'));
    const sut = await make();

    await expect(sut.remember(A)).resolves.toBeUndefined();

    expect(sut.knownHere(A)).toBe(true);
    expect(warn).toHaveBeenCalledWith(
      expect.objectContaining({ hash: A, err: 'database is down' }),
      'narinfo miss not remembered in the database',
    );
  });

  it('sweeps expired rows when a miss is remembered, at most once a minute', async () => {
    rows.table.set(B, 1_000_000 - 1);
    const sut = await make();

    await sut.remember(A);
    await sut.onModuleDestroy(); // waits for the sweep
    expect(rows.sweepExpired).toHaveBeenCalledWith(1_000_000);
    expect([...rows.table.keys()]).toEqual([A]);

    clock.set(1_000_000 + 59_999);
    await sut.remember(B);
    expect(rows.sweepExpired).toHaveBeenCalledTimes(1);
    clock.set(1_000_000 + 60_000);
    await sut.remember(B);
    await sut.onModuleDestroy();
    expect(rows.sweepExpired).toHaveBeenCalledTimes(2);
    expect(rows.table.has(A)).toBe(false); // expired by then
  });

  it('keeps a bounded number of misses here, dropping the oldest first', async () => {
    const sut = await make();
    const hashes = Array.from({ length: 10_001 }, (_, i) => i.toString(36).padStart(32, '0'));
    for (const hash of hashes) await sut.remember(hash);

    expect(sut.knownHere(hashes[0])).toBe(false);
    expect(sut.knownHere(hashes[1])).toBe(true);
    expect(sut.knownHere(hashes[10_000])).toBe(true);
    await expect(sut.check(hashes[0])).resolves.toBe('remembered'); // still in the database
  });
});
