import { ExecutionContextHost } from '@nestjs/core/helpers/execution-context-host';
import { Test } from '@nestjs/testing';
import { UnauthorizedError } from 'src/common/errors';
import { NCPS_CONFIG } from 'src/config/config.module';
import { NcpsConfig } from 'src/config/config';
import { TokenGuard, acceptedTokens, matchesOneOf, presentedToken } from './token.guard';
import { testConfig } from 'test/support/config';

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/** The guard as Nest builds it, from a configuration built like the CLI builds it. */
async function guardFor(flags: Record<string, unknown>): Promise<TokenGuard> {
  const config: NcpsConfig = testConfig(flags);
  const moduleRef = await Test.createTestingModule({
    providers: [TokenGuard, { provide: NCPS_CONFIG, useValue: config }],
  }).compile();
  return moduleRef.get(TokenGuard);
}

/** Answers what the guard decided: 'pass' or the HTTP status it threw. */
function decide(sut: TokenGuard, method: string, authorization?: string): 'pass' | number {
  const request = { method, headers: authorization === undefined ? {} : { authorization } };
  try {
    return sut.canActivate(new ExecutionContextHost([request, {}])) ? 'pass' : 403;
  } catch (e) {
    if (e instanceof UnauthorizedError) return e.status;
    throw e;
  }
}

describe('presentedToken', () => {
  it.each([
    ['Bearer abc', 'abc'],
    ['bearer abc', 'abc'],
    [basic('nix', 'abc'), 'abc'],
    [basic('', 'a:b:c'), 'a:b:c'],
    [basic('anyone', ''), ''],
  ])('reads the token of %p', (header, token) => {
    expect(presentedToken(header)).toBe(token);
  });

  it.each([undefined, '', 'Bearer', 'abc', 'Token abc', 'Bearer a b', `Basic ${Buffer.from('no-colon').toString('base64')}`])(
    'finds no token in %p',
    (header) => {
      expect(presentedToken(header)).toBeUndefined();
    },
  );
});

describe('matchesOneOf', () => {
  it('matches equal secrets only, whatever their lengths', () => {
    expect(matchesOneOf('s3cret', ['other', 's3cret'])).toBe(true);
    expect(matchesOneOf('s3cre', ['s3cret'])).toBe(false);
    expect(matchesOneOf('s3cret-and-more', ['s3cret'])).toBe(false);
    expect(matchesOneOf('', ['s3cret'])).toBe(false);
    expect(matchesOneOf(undefined, ['s3cret'])).toBe(false);
    expect(matchesOneOf('s3cret', [])).toBe(false);
  });
});

describe('acceptedTokens', () => {
  it('accepts either token for reads once a get token is set, and only the put token for writes', () => {
    const cache = { getToken: 'read', putToken: 'write' };
    expect(acceptedTokens('GET', cache)).toEqual(['read', 'write']);
    expect(acceptedTokens('HEAD', cache)).toEqual(['read', 'write']);
    for (const method of ['PUT', 'DELETE', 'POST', 'PATCH']) expect(acceptedTokens(method, cache)).toEqual(['write']);
  });

  it('leaves reads open without a get token, even when writes need a token', () => {
    expect(acceptedTokens('GET', { putToken: 'write' })).toEqual([]);
    expect(acceptedTokens('PUT', { putToken: 'write' })).toEqual(['write']);
    expect(acceptedTokens('PUT', {})).toEqual([]);
  });
});

describe('TokenGuard', () => {
  it('with a get token only, requires it for reads and for writes (the put token falls back to it)', async () => {
    const sut = await guardFor({ 'cache-get-token': 'read-token', 'cache-allow-put-verb': 'true' });
    expect(decide(sut, 'GET')).toBe(401);
    expect(decide(sut, 'GET', 'Bearer read-token')).toBe('pass');
    expect(decide(sut, 'PUT')).toBe(401);
    expect(decide(sut, 'DELETE', 'Bearer wrong')).toBe(401);
    expect(decide(sut, 'PUT', 'Bearer read-token')).toBe('pass');
    expect(decide(sut, 'DELETE', basic('nix', 'read-token'))).toBe('pass');
  });

  it('with both tokens, writes need the put token; reads take either', async () => {
    const sut = await guardFor({ 'cache-get-token': 'read-token', 'cache-put-token': 'write-token' });
    expect(decide(sut, 'PUT', 'Bearer read-token')).toBe(401);
    expect(decide(sut, 'PUT', basic('nix', 'read-token'))).toBe(401);
    expect(decide(sut, 'PUT', 'Bearer write-token')).toBe('pass');
    expect(decide(sut, 'DELETE', basic('nix', 'write-token'))).toBe('pass');
    expect(decide(sut, 'GET', 'Bearer read-token')).toBe('pass');
    expect(decide(sut, 'HEAD', basic('nix', 'write-token'))).toBe('pass');
    expect(decide(sut, 'GET', 'Bearer nope')).toBe(401);
  });

  it('with a put token only, reads stay open and writes need it', async () => {
    const sut = await guardFor({ 'cache-put-token': 'write-token' });
    expect(decide(sut, 'GET')).toBe('pass');
    expect(decide(sut, 'PUT')).toBe(401);
    expect(decide(sut, 'PUT', 'Bearer write-token')).toBe('pass');
  });

  it('without any token, lets everything through', async () => {
    const sut = await guardFor({});
    expect(decide(sut, 'GET')).toBe('pass');
    expect(decide(sut, 'PUT')).toBe('pass');
    expect(decide(sut, 'DELETE', 'Bearer anything')).toBe('pass');
  });
});
