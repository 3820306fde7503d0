import { redactUrl } from './redact-url';

describe('redactUrl', () => {
  it.each([
    ['postgresql://ncps:s3cret@db:5432/ncps?sslmode=require', 'postgresql://ncps:***@db:5432/ncps?sslmode=require'],
    ['postgres://ncps:p%40ss%2Fword@db/ncps', 'postgres://ncps:***@db/ncps'],
    ['postgres://ncps:pa#ss@db/ncps', 'postgres://ncps:***@db/ncps'],
    ['postgres://ncps:s3cret@/ncps?host=/var/run/postgresql', 'postgres://ncps:***@/ncps?host=/var/run/postgresql'],
    ['mysql://root:hunter2@127.0.0.1:3306/ncps', 'mysql://root:***@127.0.0.1:3306/ncps'],
    ['mysql://u:p@[::1]:3306/x', 'mysql://u:***@[::1]:3306/x'],
    ['postgres://db/ncps?user=ncps&password=s3cret', 'postgres://db/ncps?user=ncps&password=***'],
    ['postgres://db/ncps?sslpassword=x&PASSWORD=y&pass%77ord=z', 'postgres://db/ncps?sslpassword=***&PASSWORD=***&pass%77ord=***'],
    ['postgres://:only-password@db/x', 'postgres://:***@db/x'],
  ])('masks the credentials of %s', (url, expected) => {
    expect(redactUrl(url)).toBe(expected);
  });

  it.each([
    'postgresql://ncps@db:5432/ncps?sslmode=disable',
    'postgresql:///ncps?host=/var/run/postgresql',
    'mysql://root@127.0.0.1:3306/ncps?socket=/run/mysqld/mysqld.sock',
    'sqlite:/var/lib/ncps/db/ncps.sqlite',
    'sqlite3:relative/ncps.sqlite',
  ])('leaves %s, which carries no secret, as it was', (url) => {
    expect(redactUrl(url)).toBe(url);
  });

  it.each([
    ['an unencoded / in the password', 'postgres://ncps:pa/ss@db/ncps'],
    ['an unencoded ? in the password', 'mysql://root:pa?ss@db/ncps'],
    ['no // after the scheme', 'postgres:ncps:s3cret@db/ncps'],
  ])('keeps only the scheme when the URL is ambiguous (%s)', (_, url) => {
    const sut = redactUrl(url);

    expect(sut).toMatch(/^(postgres|mysql):<URL redacted>$/);
    expect(sut).not.toMatch(/pa|s3cret/);
  });
});
