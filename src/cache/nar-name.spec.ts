import { BadRequestError } from 'src/common/errors';
import { narInfoHashOf, parseNarInfoName, parseNarName } from './nar-name';

const NIX32 = '0c8shwqlvxj0y1pz3xj2bvg1y3ra59lk1sp6v5nlnqbp1jvnqm5s';
const HEX = 'a'.repeat(64);

describe('parseNarInfoName', () => {
  it('returns the store path hash', () => {
    expect(parseNarInfoName('la57s5irymd2r45ypiwdi0gnw5smcf4a.narinfo')).toBe('la57s5irymd2r45ypiwdi0gnw5smcf4a');
  });

  it.each(['x.narinfo', 'la57s5irymd2r45ypiwdi0gnw5smcf4e.narinfo', 'la57s5irymd2r45ypiwdi0gnw5smcf4a.ls', '../etc.narinfo'])(
    'rejects %p',
    (name) => {
      expect(() => parseNarInfoName(name)).toThrow(BadRequestError);
    },
  );
});

describe('narInfoHashOf', () => {
  it('tells a name that is no narinfo at all (undefined) from a malformed narinfo name (400)', () => {
    expect(narInfoHashOf('la57s5irymd2r45ypiwdi0gnw5smcf4a.narinfo')).toBe('la57s5irymd2r45ypiwdi0gnw5smcf4a');
    expect(narInfoHashOf('la57s5irymd2r45ypiwdi0gnw5smcf4a.ls')).toBeUndefined();
    expect(() => narInfoHashOf('x.narinfo')).toThrow(BadRequestError);
  });
});

describe('parseNarName', () => {
  it.each([
    [`${NIX32}.nar`, 'none', `nar/${NIX32}.nar`],
    [`${NIX32}.nar.xz`, 'xz', `nar/${NIX32}.nar.xz`],
    [`${NIX32}.nar.zst`, 'zstd', `nar/${NIX32}.nar.zst`],
    [`${HEX}.nar.bz2`, 'bzip2', `nar/${HEX}.nar.bz2`],
  ])('%s → %s, key %s', (name, compression, key) => {
    expect(parseNarName(name)).toEqual({ hash: name.split('.')[0], compression, key });
  });

  // 'z' is 31: as the first of 52 nix32 characters it sets bits past the 256 of a sha256.
  it.each([
    `${NIX32}.nar.rar`,
    `${NIX32}.tar`,
    'short.nar',
    `${NIX32.toUpperCase()}.nar`,
    `..%2f${NIX32}.nar`,
    `${'z'.repeat(52)}.nar`,
    `z${NIX32.slice(1)}.nar.xz`,
  ])('rejects %p', (name) => {
    expect(() => parseNarName(name)).toThrow(BadRequestError);
  });
});
