import { createHash } from 'node:crypto';
import { advisoryKey, sessionIndex } from './postgres.advisory-key';

describe('advisoryKey', () => {
  it('is the first 8 bytes of sha256(prefix + key) as a signed int64', () => {
    const digest = createHash('sha256').update('ncps:lock:lru').digest('hex');
    expect(BigInt.asUintN(64, BigInt(advisoryKey('ncps:lock:', 'lru')))).toBe(BigInt(`0x${digest.slice(0, 16)}`));
  });

  it('is stable and fits a PostgreSQL bigint (negative values included)', () => {
    const ids = Array.from({ length: 2000 }, (_, i) => BigInt(advisoryKey('ncps:lock:', `download:nar:${i}`)));
    expect(advisoryKey('ncps:lock:', 'download:nar:7')).toBe(ids[7].toString());
    for (const id of ids) {
      expect(id).toBeGreaterThanOrEqual(-(2n ** 63n));
      expect(id).toBeLessThan(2n ** 63n);
    }
    expect(ids.some((id) => id < 0n)).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('differs by prefix, so deployments sharing a database stay apart', () => {
    expect(advisoryKey('a:', 'lru')).not.toBe(advisoryKey('b:', 'lru'));
  });
});

describe('sessionIndex', () => {
  it('maps every id (negative ones too) to a session, and spreads them', () => {
    const counts = [0, 0];
    for (let i = 0; i < 1000; i++) {
      const index = sessionIndex(advisoryKey('p:', `k${i}`), 2);
      expect([0, 1]).toContain(index);
      counts[index] += 1;
    }
    expect(Math.min(...counts)).toBeGreaterThan(400);
  });
});
