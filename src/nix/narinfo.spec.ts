import { narInfoFixture, narInfoFixtures, pathVector } from 'test/fixtures/nix/fixtures';
import { NixFormatError } from './errors';
import { parseNarInfo, serializeNarInfo } from './narinfo';

const baseName = (storePath: string) => storePath.slice('/nix/store/'.length);
/** Replaces the `Key: ...` line with `line`, or removes it when `line` is null. */
const withLine = (text: string, key: string, line: string | null) =>
  text.replace(new RegExp(`^${key}: .*\\n`, 'm'), line === null ? '' : `${line}\n`);

describe('parseNarInfo', () => {
  it.each(narInfoFixtures().map((f) => [`${f.compression}/${f.hash}`, f.text]))('round-trips %s byte for byte', (_, text) => {
    expect(serializeNarInfo(parseNarInfo(text))).toBe(text);
  });

  it('reads the fields of a built path with references', () => {
    const path = pathVector('withref');
    const sut = parseNarInfo(narInfoFixture('xz', 'withref'));
    expect(sut).toEqual({
      storePath: path.storePath,
      url: expect.stringMatching(/^nar\/[0-9a-z]{52}\.nar\.xz$/),
      compression: 'xz',
      fileHash: expect.stringMatching(/^sha256:[0-9a-z]{52}$/),
      fileSize: expect.any(Number),
      narHash: path.narHash,
      narSize: path.narSize,
      references: path.references.map(baseName),
      deriver: baseName(path.deriver),
      sigs: path.sigs,
    });
    // Nix names the NAR file after its FileHash.
    expect(sut.url).toBe(`nar/${sut.fileHash?.slice('sha256:'.length)}.nar.xz`);
  });

  it('reads a content-addressed path with two signatures and no references', () => {
    const path = pathVector('hello.txt');
    const sut = parseNarInfo(narInfoFixture('none', 'hello.txt'));
    expect(sut.references).toEqual([]);
    expect(sut.sigs).toEqual(path.sigs);
    expect(sut.sigs).toHaveLength(2);
    expect(sut.ca).toBe(`fixed:r:${path.narHash}`);
    expect(sut.deriver).toBeUndefined();
    expect(sut.compression).toBe('none');
  });

  it.each([
    ['base16', (p: { narHashBase16: string }) => `sha256:${p.narHashBase16}`],
    ['SRI', (p: { narHashSri: string }) => p.narHashSri],
  ])('normalises a %s NarHash to nix32', (_, render) => {
    const path = pathVector('withref');
    const text = narInfoFixture('zstd', 'withref');
    const sut = parseNarInfo(withLine(text, 'NarHash', `NarHash: ${render(path)}`));
    expect(sut.narHash).toBe(path.narHash);
    expect(serializeNarInfo(sut)).toBe(text);
  });

  it('defaults Compression to bzip2 when absent or empty', () => {
    const text = narInfoFixture('xz', 'trivial');
    expect(parseNarInfo(withLine(text, 'Compression', null)).compression).toBe('bzip2');
    expect(parseNarInfo(withLine(text, 'Compression', 'Compression: ')).compression).toBe('bzip2');
  });

  it('reads unknown-deriver as no deriver', () => {
    const text = narInfoFixture('xz', 'withref');
    const sut = parseNarInfo(withLine(text, 'Deriver', 'Deriver: unknown-deriver'));
    expect(sut.deriver).toBeUndefined();
    expect(serializeNarInfo(sut)).toBe(withLine(text, 'Deriver', null));
  });

  it('ignores unknown keys, a missing References line and a missing final newline', () => {
    const text = narInfoFixture('xz', 'trivial');
    const sut = parseNarInfo(`Future: thing\n${withLine(text, 'References', null)}Another: one`);
    expect(serializeNarInfo(sut)).toBe(text);
  });

  it('splits References on runs of spaces', () => {
    const text = narInfoFixture('xz', 'withref');
    const refs = pathVector('withref').references.map(baseName);
    const sut = parseNarInfo(withLine(text, 'References', `References:  ${refs.join('   ')} `));
    expect(sut.references).toEqual(refs);
  });

  it.each([
    ['StorePath', 'narinfo lacks StorePath'],
    ['URL', 'narinfo lacks URL'],
    ['NarHash', 'narinfo lacks NarHash'],
    ['NarSize', 'narinfo lacks NarSize'],
  ])('requires %s', (key, message) => {
    expect(() => parseNarInfo(withLine(narInfoFixture('xz', 'withref'), key, null))).toThrow(message);
  });

  it.each([
    ['StorePath', '/nix/store/short-name', 'narinfo StorePath'],
    ['StorePath', 'nix/store/i9pmrzmpshapij2kin22pff6fc2adavx-x', 'narinfo StorePath'],
    ['URL', '', 'narinfo URL'],
    ['Compression', 'rar', 'narinfo Compression'],
    ['NarHash', 'sha256:abc', 'narinfo NarHash'],
    ['NarHash', 'md5:d41d8cd98f00b204e9800998ecf8427e', 'narinfo NarHash'],
    ['FileHash', '', 'narinfo FileHash'],
    ['NarSize', '0', 'narinfo NarSize'],
    ['NarSize', '-1', 'narinfo NarSize'],
    ['NarSize', '1e3', 'narinfo NarSize'],
    ['NarSize', '0120', 'narinfo NarSize'],
    ['NarSize', '120 ', 'narinfo NarSize'],
    ['NarSize', '9007199254740993', 'narinfo NarSize'],
    ['FileSize', 'x', 'narinfo FileSize'],
    ['References', 'not-a-store-path', 'narinfo References'],
    ['Deriver', '', 'narinfo Deriver'],
  ])('rejects %s %j', (key, value, message) => {
    const text = withLine(narInfoFixture('xz', 'withref'), key, `${key}: ${value}`);
    expect(() => parseNarInfo(text)).toThrow(NixFormatError);
    expect(() => parseNarInfo(text)).toThrow(message);
  });

  it('accepts a FileSize of zero', () => {
    const text = withLine(narInfoFixture('xz', 'withref'), 'FileSize', 'FileSize: 0');
    expect(parseNarInfo(text).fileSize).toBe(0);
  });

  it.each([
    ['a duplicate single-valued key', (t: string) => `${t}NarSize: 1\n`, 'narinfo has more than one NarSize'],
    ['a line without ": "', (t: string) => `${t}System:x86_64-linux\n`, 'narinfo line 11'],
    ['a blank line', (t: string) => `${t}\n`, 'narinfo line 11'],
    ['CRLF line ends', (t: string) => t.replace(/\n/g, '\r\n'), 'carriage return'],
    ['an empty Sig', (t: string) => `${t}Sig: \n`, 'narinfo Sig is empty'],
    ['an empty text', () => '', 'narinfo lacks StorePath'],
  ])('rejects %s', (_, mangle, message) => {
    const text = narInfoFixture('xz', 'withref');
    expect(text.split('\n')).toHaveLength(11); // the line numbers above count on 10 lines
    expect(() => parseNarInfo(mangle(text))).toThrow(message);
  });
});

describe('serializeNarInfo', () => {
  it('keeps an empty References line as Nix writes it', () => {
    const text = narInfoFixture('zstd', 'trivial');
    expect(text).toContain('\nReferences: \n');
    expect(serializeNarInfo(parseNarInfo(text))).toContain('\nReferences: \n');
  });

  it('writes System between Deriver and Sig, and CA last', () => {
    const sut = serializeNarInfo({
      ...parseNarInfo(narInfoFixture('none', 'withref')),
      system: 'x86_64-linux',
      ca: 'text:sha256:1r3v22qkypccqifzbww5lrn6hf1chi23m6zzkyvb8bvg457nxslq',
    });
    expect(sut.split('\n').map((line) => line.split(':')[0])).toEqual([
      'StorePath',
      'URL',
      'Compression',
      'FileHash',
      'FileSize',
      'NarHash',
      'NarSize',
      'References',
      'Deriver',
      'System',
      'Sig',
      'CA',
      '',
    ]);
  });

  it('renders hashes given in another encoding as nix32', () => {
    const path = pathVector('trivial');
    const info = parseNarInfo(narInfoFixture('none', 'trivial'));
    const sut = serializeNarInfo({ ...info, narHash: path.narHashSri, fileHash: `sha256:${path.narHashBase16}` });
    expect(sut).toContain(`\nNarHash: ${path.narHash}\n`);
    expect(sut).toContain(`\nFileHash: ${path.narHash}\n`);
  });

  it('omits absent optional fields', () => {
    const { fileHash, fileSize, ...info } = parseNarInfo(narInfoFixture('xz', 'hello.txt'));
    expect([fileHash, fileSize]).not.toContain(undefined);
    const sut = serializeNarInfo({ ...info, sigs: [], ca: undefined });
    expect(sut).toBe(
      `StorePath: ${info.storePath}\nURL: ${info.url}\nCompression: xz\n` +
        `NarHash: ${info.narHash}\nNarSize: ${info.narSize}\nReferences: \n`,
    );
  });
});
