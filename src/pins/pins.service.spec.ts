import { NotFoundError } from 'src/common/errors';
import { NarInfoRepository } from 'src/database';
import { PinRepository, PinRow } from './pin.repository';
import { PinsService } from './pins.service';

const h = (letter: string) => letter.repeat(32);

/** The pins table and the stored narinfos (hash → referenced hashes), in memory. */
function fakes(stored: Record<string, string[]>) {
  const pins = new Map<string, { createdAt: number; expiresAt: number | null }>();
  const pinRepository = {
    pin: async (hash: string, createdAt: number, expiresAt: number | null) => void pins.set(hash, { createdAt, expiresAt }),
    unpin: async (hash: string) => pins.delete(hash),
    list: async (): Promise<PinRow[]> => [...pins].map(([hash, p]) => ({ hash, ...p, stored: hash in stored })),
    findActiveHashes: async (now: number) => [...pins].filter(([, p]) => p.expiresAt === null || p.expiresAt > now).map(([hash]) => hash),
    deleteExpired: async (now: number) => {
      const expired = [...pins].filter(([, p]) => p.expiresAt !== null && p.expiresAt <= now).map(([hash]) => hash);
      for (const hash of expired) pins.delete(hash);
      return expired.length;
    },
  } as unknown as PinRepository;
  const narInfos = {
    findReferencesOf: async (hashes: string[]) =>
      hashes
        .filter((hash) => hash in stored)
        .map((hash) => ({ hash, url: `nar/${hash[0]}.nar`, refs: stored[hash].map((r) => `${r}-x`).join(' ') })),
  } as unknown as NarInfoRepository;
  return { pins, sut: new PinsService(pinRepository, narInfos) };
}

describe('PinsService', () => {
  const stored = { [h('a')]: [h('b')], [h('b')]: [h('c')], [h('c')]: [], [h('x')]: [] };

  it('protects the whole stored closure of each pin in force', async () => {
    const { sut } = fakes(stored);
    await sut.pin(h('a'), undefined, 1000);

    const protection = await sut.protection(2000);

    expect(protection.pins).toBe(1);
    expect([...protection.closure.keys()].sort()).toEqual([h('a'), h('b'), h('c')]);
  });

  it('stops protecting once the TTL has passed, and drops the expired pin', async () => {
    const { sut, pins } = fakes(stored);
    await sut.pin(h('a'), 60_000, 1000);

    expect((await sut.protection(60_999)).closure.size).toBe(3);
    expect(await sut.list(61_000)).toEqual([
      { hash: h('a'), createdAt: new Date(1000).toISOString(), expiresAt: new Date(61_000).toISOString(), active: false, stored: true },
    ]);
    expect((await sut.protection(61_000)).closure.size).toBe(0);
    expect(pins.size).toBe(0);
  });

  it('renews a pin pinned again, and accepts a path not stored yet', async () => {
    const { sut } = fakes(stored);
    await sut.pin(h('a'), 1000, 0);
    await sut.pin(h('a'), undefined, 500);

    await expect(sut.pin(h('n'), undefined, 600)).resolves.toMatchObject({ hash: h('n'), stored: false, expiresAt: null, active: true });
    expect((await sut.protection(5000)).closure.size).toBe(3);
  });

  it('says when there is no pin to remove', async () => {
    const { sut } = fakes(stored);
    await sut.pin(h('a'));

    await expect(sut.unpin(h('a'))).resolves.toBeUndefined();
    await expect(sut.unpin(h('a'))).rejects.toThrow(NotFoundError);
  });
});
