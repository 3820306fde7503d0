import { parseWarmTarget, parseWarmTargets, warmLines } from './warm-input';

const HASH = '0c0f8f3b0sv1m4ahbcw8h9i2zj0b2a5a';

describe('warm input', () => {
  it.each([
    [`/nix/store/${HASH}-hello-2.12`, HASH],
    [`${HASH}-hello-2.12`, HASH],
    [HASH, HASH],
    [`  ${HASH}\t`, HASH],
  ])('reads %j as the store path hash', (entry, hash) => {
    expect(parseWarmTarget(entry)).toBe(hash);
  });

  it.each([
    ['', 'empty'],
    ['hello', 'a name'],
    [`/nix/store/${HASH}`, 'a store path without a name'],
    [`/tmp/${HASH}-hello`, 'another directory'],
    [`${HASH.slice(0, 31)}e-hello`, 'a hash with a letter nix32 leaves out'],
    [`${HASH}-`, 'an empty name'],
    [`${HASH}-he/llo`, 'a name with a slash'],
    [`${HASH}.narinfo`, 'a narinfo name'],
  ])('refuses %j (%s)', (entry) => {
    expect(parseWarmTarget(entry)).toBeUndefined();
  });

  it('keeps each hash once, in order, and lists the invalid entries', () => {
    const other = '1c0f8f3b0sv1m4ahbcw8h9i2zj0b2a5a';
    expect(parseWarmTargets([`/nix/store/${HASH}-a`, other, HASH, ' bad '])).toEqual({
      hashes: [HASH, other],
      invalid: [{ entry: 'bad', reason: 'neither a store path nor a store path hash' }],
    });
  });

  it('reads lines, skipping blank lines and comments', () => {
    expect(warmLines(`# roots\n/nix/store/${HASH}-a\n\n  ${HASH}  \r\n`)).toEqual([`/nix/store/${HASH}-a`, HASH]);
  });
});
