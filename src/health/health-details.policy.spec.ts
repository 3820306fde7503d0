import { FastifyRequest } from 'fastify';
import { NcpsConfig } from 'src/config/config';
import { HealthDetailsPolicy } from './health-details.policy';

const config = (detailsFrom: string[], getToken?: string, putToken?: string) =>
  ({ health: { detailsFrom }, cache: { getToken, putToken } }) as unknown as NcpsConfig;

const request = (remoteAddress: string | undefined, authorization?: string) =>
  ({ raw: { socket: { remoteAddress } }, headers: { authorization, 'x-forwarded-for': '127.0.0.1' } }) as unknown as FastifyRequest;

const basic = (password: string) => `Basic ${Buffer.from(`nix:${password}`).toString('base64')}`;

describe('HealthDetailsPolicy', () => {
  it('allows a client from a listed range, by its TCP address (a forwarded header counts for nothing)', () => {
    const sut = new HealthDetailsPolicy(config(['127.0.0.0/8', '::1/128']));
    expect(sut.allows(request('127.0.0.1'))).toBe(true);
    expect(sut.allows(request('::ffff:127.0.0.5'))).toBe(true);
    expect(sut.allows(request('::1'))).toBe(true);
    expect(sut.allows(request('203.0.113.9'))).toBe(false);
    expect(sut.allows(request(undefined))).toBe(false);
  });

  it('allows the get token or the put token, as Bearer or Basic, from anywhere', () => {
    const sut = new HealthDetailsPolicy(config([], 'r', 'w'));
    for (const auth of ['Bearer r', 'Bearer w', basic('r'), basic('w')])
      expect([auth, sut.allows(request('203.0.113.9', auth))]).toEqual([auth, true]);
    for (const auth of [undefined, 'Bearer x', 'Bearer', basic(''), 'r'])
      expect([auth, sut.allows(request('203.0.113.9', auth))]).toEqual([auth, false]);
  });

  it('allows no one by token when no token is configured (an empty password must not match)', () => {
    const sut = new HealthDetailsPolicy(config(['10.0.0.0/8']));
    expect(sut.allows(request('203.0.113.9', 'Bearer '))).toBe(false);
    expect(sut.allows(request('203.0.113.9', basic('')))).toBe(false);
    expect(sut.allows(request('10.1.1.1'))).toBe(true);
  });
});
