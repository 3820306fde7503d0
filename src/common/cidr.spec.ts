import { cidrMatcher, parseCidr } from './cidr';

describe('parseCidr', () => {
  it.each([
    ['127.0.0.0/8', { address: '127.0.0.0', prefix: 8, family: 'ipv4' }],
    ['::1/128', { address: '::1', prefix: 128, family: 'ipv6' }],
    ['10.1.2.3', { address: '10.1.2.3', prefix: 32, family: 'ipv4' }],
    ['fd00::', { address: 'fd00::', prefix: 128, family: 'ipv6' }],
  ])('%s', (text, cidr) => {
    expect(parseCidr(text)).toEqual(cidr);
  });

  it.each(['localhost', '10.0.0.0/33', '::/129', '10.0.0.0/-1', '10.0.0.0/8/8', '10.0.0.0/', '10.0.0.0/x', '300.0.0.0/8'])(
    'rejects %p',
    (text) => {
      expect(() => parseCidr(text)).toThrow(/not an IP address|prefix length/);
    },
  );
});

describe('cidrMatcher', () => {
  const sut = cidrMatcher(['127.0.0.0/8', '::1/128', '10.20.0.0/16']);

  it.each([
    ['127.0.0.1', true],
    ['127.255.1.2', true],
    ['::1', true],
    ['::ffff:127.0.0.1', true],
    ['10.20.9.9', true],
    ['10.21.0.1', false],
    ['192.168.1.1', false],
    ['::ffff:192.168.1.1', false],
    ['::2', false],
    ['', false],
    [undefined, false],
    ['not-an-ip', false],
  ])('%p → %p', (address, expected) => {
    expect(sut(address)).toBe(expected);
  });

  it('matches nothing when the list is empty', () => {
    expect(cidrMatcher([])('127.0.0.1')).toBe(false);
  });
});
