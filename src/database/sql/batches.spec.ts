import { approximateSize, batches } from './batches';
import { rowsPerStatement } from './dialect';

describe('batches', () => {
  it('cuts items into batches of at most maxItems, in order', () => {
    expect(batches([1, 2, 3, 4, 5], 2)).toEqual([[1, 2], [3, 4], [5]]);
  });

  it('returns no batch for no items', () => {
    expect(batches([], 10)).toEqual([]);
  });

  it('starts a new batch before the byte budget is exceeded', () => {
    const items = ['a'.repeat(40), 'b'.repeat(40), 'c'.repeat(40)];

    const sut = batches(items, 100, 100, (s) => s.length);

    expect(sut).toEqual([[items[0], items[1]], [items[2]]]);
  });

  it('puts an item bigger than the budget alone in its batch', () => {
    const big = 'x'.repeat(500);

    expect(batches(['a', big, 'b'], 100, 100, (s) => s.length)).toEqual([['a'], [big], ['b']]);
  });
});

describe('rowsPerStatement', () => {
  it('keeps rows × parameters within each driver limit', () => {
    expect(rowsPerStatement('sqlite', 40) * 40).toBeLessThanOrEqual(32766);
    expect(rowsPerStatement('postgres', 100) * 100).toBeLessThanOrEqual(65535);
    expect(rowsPerStatement('mysql', 1)).toBe(1000);
    expect(rowsPerStatement('sqlite', 100_000)).toBe(1);
  });
});

describe('approximateSize', () => {
  it('counts string bytes in UTF-8', () => {
    expect(approximateSize(['é', null, 5])).toBe(2 + 4 + 8 + 4 + 8 + 4);
  });
});
