import { BadRequestError } from 'src/common/errors';
import { buildTraceName, debugInfoName, listingName, logName, realisationName } from './artifact-name';

const HASH = 'x333wkgxwys1hlb9lrdl5dr33nm5g8rv';
const DRV = 'r6fcylg66rjaz8wkpfg1p50ypcyjzvpd-logged.drv';
const DRV_HASH = '4e546406d1c260c0bf0d1281e539827b0b5a1a58a223f60e5aa86938fe6f91d2';

describe('artifact names', () => {
  it('names a listing by its store path hash, tied to that narinfo', () => {
    expect(listingName(`${HASH}.ls`)).toEqual({
      kind: 'listing',
      path: `${HASH}.ls`,
      storageKey: `ls/${HASH}.ls`,
      narInfoHash: HASH,
      contentType: 'application/json',
    });
  });

  it('names logs, realisations, build traces and debuginfo as Nix writes them, tied to no narinfo', () => {
    expect(logName(DRV)).toMatchObject({ kind: 'log', path: `log/${DRV}`, storageKey: `log/${DRV}`, narInfoHash: null });
    expect(realisationName(`sha256:${DRV_HASH}!out.doi`)).toMatchObject({
      kind: 'realisation',
      path: `realisations/sha256:${DRV_HASH}!out.doi`,
      storageKey: `realisations/sha256-${DRV_HASH}/out.doi`,
    });
    expect(buildTraceName(DRV, 'dev.doi')).toMatchObject({
      path: `build-trace-v2/${DRV}/dev.doi`,
      storageKey: `build-trace-v2/${DRV}/dev.doi`,
    });
    const id = 'abcdef0123456789abcdef0123456789abcdef01';
    expect(debugInfoName(`${id}.debug`)).toMatchObject({ path: `debuginfo/${id}.debug`, storageKey: `debuginfo/${id}.debug` });
    expect(debugInfoName(id)).toMatchObject({ path: `debuginfo/${id}` });
  });

  it('gives characters storage keys refuse a reversible escape, so distinct names never share a key', () => {
    const plus = logName(`${HASH}-gtk+3-3.24.drv`).storageKey;
    const underscore = logName(`${HASH}-gtk_2b3-3.24.drv`).storageKey;
    expect(plus).toBe(`log/${HASH}-gtk_2b3-3.24.drv`);
    expect(underscore).toBe(`log/${HASH}-gtk_5f2b3-3.24.drv`);
    expect(logName(`${HASH}-a?b=c.drv`).storageKey).toBe(`log/${HASH}-a_3fb_3dc.drv`);
  });

  it.each([
    ['listing', () => listingName('abc.ls')],
    ['listing with e', () => listingName(`${'e'.repeat(32)}.ls`)],
    ['listing without .ls', () => listingName(HASH)],
    ['log of no store path', () => logName('hello.drv')],
    ['log with a slash', () => logName(`${HASH}-a/../b`)],
    ['log with a space', () => logName(`${HASH}-a b`)],
    ['realisation with base32 hash', () => realisationName(`sha256:${HASH}!out.doi`)],
    ['realisation upper-case hex', () => realisationName(`sha256:${DRV_HASH.toUpperCase()}!out.doi`)],
    ['realisation without output', () => realisationName(`sha256:${DRV_HASH}!.doi`)],
    ['realisation output starting with a dot', () => realisationName(`sha256:${DRV_HASH}!..doi`)],
    ['realisation without .doi', () => realisationName(`sha256:${DRV_HASH}!out`)],
    ['build trace of no store path', () => buildTraceName('x.drv', 'out.doi')],
    ['build trace without .doi', () => buildTraceName(DRV, 'out')],
    ['debuginfo not hex', () => debugInfoName('xyz01234567')],
    ['debuginfo too short', () => debugInfoName('abc')],
    ['debuginfo other suffix', () => debugInfoName('abcdef0123.so')],
  ])('refuses a malformed %s with 400', (_what, parse) => {
    expect(parse).toThrow(BadRequestError);
  });
});
