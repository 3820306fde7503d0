import { ServedNarInfo } from 'src/database';
import { NarInfoTexts } from './narinfo-texts';

const row = (overrides: Partial<ServedNarInfo> = {}): ServedNarInfo => ({
  storePath: '/nix/store/26xbg1ndr7hbcncrlf9nhx5is2b25d13-hello-2.12.1',
  url: 'nar/1ngi2dxw1f7khrrjamzkkdai393lwcm8s78gvs1ag8k3n82w7bvp.nar.xz',
  compression: 'xz',
  fileHash: 'sha256:1ngi2dxw1f7khrrjamzkkdai393lwcm8s78gvs1ag8k3n82w7bvp',
  fileSize: 50_264,
  narHash: 'sha256:0yzhigwjl6bws649vcs2asa4lbs8hg93hyix187gc7s7a74w5h80',
  narSize: 226_560,
  refs: '26xbg1ndr7hbcncrlf9nhx5is2b25d13-hello-2.12.1',
  deriver: null,
  system: 'x86_64-linux',
  ca: null,
  sigs: 'cache.nixos.org-1:c2ln',
  verified: true,
  ...overrides,
});

/** A render that counts its calls and tells its outputs apart. */
function counter(): { render: (r: ServedNarInfo) => Buffer; calls: () => number } {
  let calls = 0;
  return { render: (r) => Buffer.from(`${++calls} ${r.url}`), calls: () => calls };
}

describe('NarInfoTexts', () => {
  it('renders a row once, then serves the same bytes while the row read has the same content', () => {
    const sut = new NarInfoTexts(10);
    const { render, calls } = counter();
    const first = sut.bytesFor('a', row(), render);
    // A fresh read of the row: equal values, other objects.
    expect(sut.bytesFor('a', row(), render)).toBe(first);
    expect(calls()).toBe(1);
  });

  it('keeps a copy of the row it rendered, not the object the lookup made', () => {
    // Holding on to the lookup's objects would make V8 allocate every hit's row in the old generation.
    const sut = new NarInfoTexts(10);
    const { render, calls } = counter();
    const read = row();
    const first = sut.bytesFor('a', read, render);
    read.sigs = 'other-key:AAAA';
    expect(sut.bytesFor('a', row(), render)).toBe(first);
    expect(calls()).toBe(1);
  });

  /** `value` changed: another string, number or boolean, or a value where there was none. */
  const changed = (value: unknown): unknown =>
    typeof value === 'string' ? `${value}x` : typeof value === 'number' ? value + 1 : typeof value === 'boolean' ? !value : 'x';

  it.each(Object.keys(row()) as Array<keyof ServedNarInfo>)('renders again when the row changed elsewhere (%s)', (field) => {
    const sut = new NarInfoTexts(10);
    const { render, calls } = counter();
    const edited = row({ [field]: changed(row()[field]) });
    const before = sut.bytesFor('a', row(), render);
    const after = sut.bytesFor('a', edited, render);
    expect(after).not.toBe(before);
    expect(calls()).toBe(2);
    // The new version is what is remembered now.
    expect(sut.bytesFor('a', row({ [field]: changed(row()[field]) }), render)).toBe(after);
  });

  it('forgets a hash on demand', () => {
    const sut = new NarInfoTexts(10);
    const { render, calls } = counter();
    sut.bytesFor('a', row(), render);
    sut.forget('a');
    sut.bytesFor('a', row(), render);
    expect(calls()).toBe(2);
  });

  it('keeps at most its capacity, dropping the least recently used', () => {
    const sut = new NarInfoTexts(2);
    const { render, calls } = counter();
    sut.bytesFor('a', row(), render);
    sut.bytesFor('b', row(), render);
    sut.bytesFor('a', row(), render); // a is now more recent than b
    sut.bytesFor('c', row(), render); // drops b
    expect(sut.size).toBe(2);
    expect(calls()).toBe(3);
    sut.bytesFor('a', row(), render);
    expect(calls()).toBe(3);
    sut.bytesFor('b', row(), render);
    expect(calls()).toBe(4);
  });
});
