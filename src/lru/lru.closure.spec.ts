import { EvictionCandidate, EvictionOrder } from './lru.closure';

const candidate = (hash: string, lastAccessedAt: number, refs: string[] = [], id = lastAccessedAt): EvictionCandidate => ({
  id,
  hash,
  url: `nar/${hash}.nar`,
  lastAccessedAt,
  refs,
});

/** Counts the references of `stored` (hash → refs), as the pass over the database does. */
function count(sut: EvictionOrder, stored: Record<string, string[]>): void {
  sut.beginCount();
  for (const [hash, refs] of Object.entries(stored)) sut.countReferrer(hash, refs);
  sut.endCount();
}

function drain(sut: EvictionOrder): string[] {
  const order: string[] = [];
  for (let next = sut.next(); next; next = sut.next()) {
    order.push(next.hash);
    sut.evicted(next);
  }
  return order;
}

describe('EvictionOrder', () => {
  it('releases what nothing refers to, oldest first (ties by id), and a dependency when its last referrer goes', () => {
    const sut = new EvictionOrder();
    const stored = { top: ['mid', 'lib'], mid: ['lib'], lib: [], old: [], tie: [] };
    sut.add([
      candidate('lib', 1),
      candidate('mid', 2, ['lib']),
      candidate('old', 3),
      candidate('tie', 3, [], 0),
      candidate('top', 9, ['mid', 'lib']),
    ]);
    count(sut, stored);

    expect(drain(sut)).toEqual(['tie', 'old', 'top', 'mid', 'lib']);
  });

  it('holds a candidate while a narinfo that is not a candidate refers to it, and ignores self-references', () => {
    const sut = new EvictionOrder();
    sut.add([candidate('dep', 1, ['dep']), candidate('free', 2, ['free'])]);
    count(sut, { dep: ['dep'], free: ['free'], newer: ['dep'] });

    expect(drain(sut)).toEqual(['free']);
    expect(sut.pending).toBe(1);
    expect(sut.waiting().map((c) => c.hash)).toEqual(['dep']);
  });

  it('counts again from scratch when candidates are added, keeping what was evicted out', () => {
    const sut = new EvictionOrder();
    sut.add([candidate('dep', 1), candidate('a', 2)]);
    count(sut, { dep: [], a: [], top: ['dep'] });
    expect(drain(sut)).toEqual(['a']);

    sut.add([candidate('top', 5, ['dep']), candidate('a', 2)]);
    count(sut, { dep: [], top: ['dep'] });

    expect(drain(sut)).toEqual(['top', 'dep']);
    expect(sut.pending).toBe(0);
  });

  it('leaves a cycle waiting, oldest first', () => {
    const sut = new EvictionOrder();
    sut.add([candidate('y', 2, ['x']), candidate('x', 1, ['y'])]);
    count(sut, { x: ['y'], y: ['x'] });

    expect(drain(sut)).toEqual([]);
    expect(sut.waiting().map((c) => c.hash)).toEqual(['x', 'y']);
  });
});
