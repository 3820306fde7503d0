import { ClosureNode, referencedHashes, walkClosure } from './closure';

const h = (letter: string) => letter.repeat(32);

/** A stored graph: hash → the hashes it refers to; `load` records what it was asked for. */
function store(graph: Record<string, string[]>) {
  const asked: string[][] = [];
  const load = async (hashes: string[]): Promise<ClosureNode[]> => {
    asked.push([...hashes].sort());
    return hashes
      .filter((hash) => hash in graph)
      .map((hash) => ({ hash, url: `nar/${hash[0]}.nar`, refs: graph[hash].map((r) => `${r}-pkg-1.0`).join(' ') }));
  };
  return { load, asked };
}

describe('referencedHashes', () => {
  it('takes the hash of each base name, once, without the path itself', () => {
    const sut = referencedHashes(`${h('a')}-glibc-2.38 ${h('b')}-hello ${h('a')}-glibc-2.38 ${h('c')}-self`, h('c'));
    expect(sut).toEqual([h('a'), h('b')]);
  });

  it('reads nothing from an empty list and skips what is not a base name', () => {
    expect(referencedHashes('')).toEqual([]);
    expect(referencedHashes(`short ${h('a')}x-bad ${h('b')}-ok`)).toEqual([h('b')]);
  });
});

describe('walkClosure', () => {
  it('follows References transitively, one load per level', async () => {
    const { load, asked } = store({ [h('a')]: [h('b'), h('c')], [h('b')]: [h('d')], [h('c')]: [h('d')], [h('d')]: [], [h('x')]: [] });

    const sut = await walkClosure([h('a')], load);

    expect([...sut.keys()].sort()).toEqual([h('a'), h('b'), h('c'), h('d')]);
    expect(sut.get(h('d'))).toBe('nar/d.nar');
    expect(asked).toEqual([[h('a')], [h('b'), h('c')], [h('d')]]);
  });

  it('ends on cycles and self-references, asking for each hash once', async () => {
    const { load, asked } = store({ [h('a')]: [h('a'), h('b')], [h('b')]: [h('c')], [h('c')]: [h('a')] });

    const sut = await walkClosure([h('a'), h('b')], load);

    expect([...sut.keys()].sort()).toEqual([h('a'), h('b'), h('c')]);
    expect(asked.flat().sort()).toEqual([h('a'), h('b'), h('c')]);
  });

  it('stops at references that are not stored, and protects nothing for a root that is not', async () => {
    const { load } = store({ [h('a')]: [h('m')], [h('x')]: [] });

    await expect(walkClosure([h('a'), h('n')], load)).resolves.toEqual(new Map([[h('a'), 'nar/a.nar']]));
    await expect(walkClosure([], load)).resolves.toEqual(new Map());
  });
});
