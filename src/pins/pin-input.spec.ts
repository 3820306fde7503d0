import { BadRequestError } from 'src/common/errors';
import { parsePinName, parsePinTarget } from './pin-target';
import { parseTtl } from './pin-ttl';

const hash = '0ffdq8pj7m3lqjbijl3dai1w7fsl3cn1';
const DAY = 86_400_000;

describe('parseTtl', () => {
  it.each([
    ['30d', 30 * DAY],
    ['2w', 14 * DAY],
    ['1d12h', 1.5 * DAY],
    ['12h', 12 * 3_600_000],
    ['90m', 90 * 60_000],
  ])('reads %s', (text, ms) => {
    expect(parseTtl(text)).toBe(ms);
  });

  it.each(['', '0d', '0s', 'soon', '30', '-1d', 'd'])('refuses %j with a 400', (text) => {
    expect(() => parseTtl(text)).toThrow(BadRequestError);
  });
});

describe('parsePinTarget', () => {
  it.each([`/nix/store/${hash}-hello-2.12.1`, `${hash}-hello-2.12.1`, hash, `${hash}.narinfo`])('reads the hash of %s', (text) => {
    expect(parsePinTarget(text)).toBe(hash);
  });

  it.each(['hello', `/nix/store/${hash}`.slice(0, 30), `${hash}x`, `${hash.slice(0, 31)}e-x`])('refuses %s', (text) => {
    expect(() => parsePinTarget(text)).toThrow(BadRequestError);
  });
});

describe('parsePinName', () => {
  it('takes <hash>.narinfo only', () => {
    expect(parsePinName(`${hash}.narinfo`)).toBe(hash);
    expect(() => parsePinName(hash)).toThrow('expected <hash>.narinfo');
    expect(() => parsePinName('eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee.narinfo')).toThrow('invalid store path hash');
  });
});
