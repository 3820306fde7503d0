import { MASK, MIN_MASKED_SECRET_LENGTH, secretMasker, secretValues } from './secrets';
import { testConfig } from 'test/support/config';

const load = (flags: Record<string, unknown>) => testConfig(flags);

describe('secretValues', () => {
  it('collects the passwords of proxy URLs', () => {
    const sut = secretValues(
      load({
        'cache-upstream-http-proxy': 'http://me:plain%2Fpass@proxy:3128',
        'cache-upstream-https-proxy': 'http://me:tunnel-pass@proxy:3129',
      }),
    );
    expect(sut).toEqual(expect.arrayContaining(['plain%2Fpass', 'plain/pass', 'tunnel-pass']));
  });

  it('collects the token, S3 keys, Redis password and the passwords in database and upstream URLs', () => {
    const sut = secretValues(
      load({
        'cache-get-token': 'the-token',
        'cache-put-token': 'the-put-token',
        'cache-storage-s3-bucket': 'bucket',
        'cache-storage-s3-access-key-id': 'AKIAKEYID',
        'cache-storage-s3-secret-access-key': 'the/secret+key',
        'cache-lock-backend': 'redis',
        'cache-redis-addrs': ['127.0.0.1:6379'],
        'cache-redis-password': 'redis-pass',
        'cache-database-url': 'postgresql://ncps:p%40ss%2Fword@db:5432/ncps?sslpassword=client-key-pass',
        'cache-upstream-url': ['https://mirror:up-pass@cache.example.org'],
      }),
    );
    expect(sut).toEqual(
      expect.arrayContaining([
        'the-token',
        'the-put-token',
        'AKIAKEYID',
        'the/secret+key',
        encodeURIComponent('the/secret+key'),
        'redis-pass',
        'p%40ss%2Fword',
        'p@ss/word',
        'client-key-pass',
        'up-pass',
      ]),
    );
  });

  it('finds nothing in a configuration without secrets', () => {
    expect(secretValues(load({ 'cache-database-url': 'sqlite:/var/lib/ncps/db.sqlite' }))).toEqual([]);
  });
});

describe('secretMasker', () => {
  const sut = secretMasker(['s3cr3t-value', 'pa"ss\\word'])!;

  it('masks secrets wherever they sit in a JSON line, and the line stays valid JSON', () => {
    const line = `${JSON.stringify({
      msg: 'connect failed for postgres://u:s3cr3t-value@db/x',
      err: { message: 'AUTH pa"ss\\word refused', command: { args: ['default', 's3cr3t-value'] } },
      n: 12,
    })}\n`;
    const masked = sut(line);
    expect(JSON.parse(masked)).toEqual({
      msg: `connect failed for postgres://u:${MASK}@db/x`,
      err: { message: `AUTH ${MASK} refused`, command: { args: ['default', MASK] } },
      n: 12,
    });
    expect(masked.endsWith('\n')).toBe(true);
  });

  it('masks a secret used as a key', () => {
    expect(JSON.parse(sut(JSON.stringify({ 's3cr3t-value': 1 })))).toEqual({ [MASK]: 1 });
  });

  it('returns lines without secrets unchanged', () => {
    const line = '{"level":"info","msg":"ncps is serving","escaped":"a\\"b\\\\c"}\n';
    expect(sut(line)).toBe(line);
  });

  it('is not built for no secret, nor for secrets too short to search for', () => {
    expect(secretMasker([])).toBeUndefined();
    expect(secretMasker(['x'.repeat(MIN_MASKED_SECRET_LENGTH - 1)])).toBeUndefined();
  });

  it('masks a secret containing another secret whole', () => {
    const nested = secretMasker(['abcd', 'xxabcdxx'])!;
    expect(JSON.parse(nested(JSON.stringify({ a: 'xxabcdxx and abcd' })))).toEqual({ a: `${MASK} and ${MASK}` });
  });
});
