import type { FastifyRequest } from 'fastify';
import { routeOf } from './otel.requests';

const NARINFO_HASH = '0'.repeat(31) + 'a';
const NAR_HASH = '1'.repeat(51) + 'z';

function request(url: string | undefined, name?: string): FastifyRequest {
  return { routeOptions: { url }, params: name === undefined ? {} : { name } } as unknown as FastifyRequest;
}

describe('routeOf (server span names)', () => {
  it.each([
    ['/:name', `${NARINFO_HASH}.narinfo`, '/:hash.narinfo'],
    ['/upload/:name', `${NARINFO_HASH}.narinfo`, '/upload/:hash.narinfo'],
    ['/nar/:name', `${NAR_HASH}.nar`, '/nar/:hash.nar'],
    ['/nar/:name', `${NAR_HASH}.nar.xz`, '/nar/:hash.nar.xz'],
    ['/nar/:name', `${NAR_HASH}.nar.zst`, '/nar/:hash.nar.zst'],
    ['/:name', `${NARINFO_HASH}.ls`, '/:hash.ls'],
  ])('names %s with %s as %s', (url, name, expected) => {
    expect(routeOf(request(url, name))).toBe(expected);
  });

  it.each([
    // Anything else keeps the pattern, so a client cannot make up span names.
    ['/:name', 'favicon.ico'],
    ['/:name', `${NARINFO_HASH}.narinfo.bak`],
    ['/nar/:name', `${NAR_HASH}.nar.rar`],
    // e, o, t and u are not nix32 letters.
    ['/:name', `${'e'.repeat(32)}.narinfo`],
  ])('keeps %s for %s', (url, name) => {
    expect(routeOf(request(url, name))).toBe(url);
  });

  it('keeps routes without a file name, and has none for an unmatched request', () => {
    expect(routeOf(request('/health'))).toBe('/health');
    expect(routeOf(request('/log/:name', 'x.drv'))).toBe('/log/:name');
    expect(routeOf(request(undefined))).toBeUndefined();
  });
});
