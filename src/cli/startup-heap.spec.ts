import { getHeapSpaceStatistics } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { compactStartupHeap } from './startup-heap';

const MiB = 1024 * 1024;
const oldSpace = () => getHeapSpaceStatistics().find((space) => space.space_name === 'old_space')!;

describe('compactStartupHeap', () => {
  it('collects the old generation and gives back the pages that only a few survivors kept', () => {
    // Objects that live long enough to be promoted, then mostly dropped: one in 64 survives, so
    // nearly every page keeps something alive and only compaction can empty it (as after start-up).
    let promoted: Array<{ i: number }> | undefined = Array.from({ length: 1_000_000 }, (_, i) => ({ i }));
    for (let round = 0; round < 4; round++) Array.from({ length: 200_000 }, (_, i) => ({ i })); // scavenges
    const survivors = promoted.filter((_, i) => i % 64 === 0);
    promoted = undefined;
    const before = oldSpace();
    compactStartupHeap();
    const after = oldSpace();
    expect(survivors).toHaveLength(15_625);
    expect(after.space_used_size).toBeLessThan(before.space_used_size - 10 * MiB);
    expect(after.physical_space_size).toBeLessThan(before.physical_space_size - 10 * MiB);
  });

  it('leaves no gc function behind, here or in contexts made afterwards', () => {
    compactStartupHeap();
    expect((globalThis as { gc?: unknown }).gc).toBeUndefined();
    expect(runInNewContext('typeof gc')).toBe('undefined');
  });
});
