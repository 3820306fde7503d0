import { parseMysqlUrl } from './mysql-url';

describe('parseMysqlUrl', () => {
  it('reads user, password, host, port and database', () => {
    expect(parseMysqlUrl('mysql://ncps:s%3Acret@db:3307/ncps')).toEqual({
      host: 'db',
      port: 3307,
      socketPath: undefined,
      user: 'ncps',
      password: 's:cret',
      database: 'ncps',
      tls: { mode: 'disable' },
      connectTimeoutMs: undefined,
    });
  });

  it('takes a unix socket from ?socket=', () => {
    expect(parseMysqlUrl('mysql://root@localhost/ncps?socket=/run/mysqld/mysqld.sock')).toMatchObject({
      socketPath: '/run/mysqld/mysqld.sock',
      database: 'ncps',
    });
  });

  it('speaks libpq sslmode for TLS', () => {
    expect(parseMysqlUrl('mysql://db/ncps?sslmode=verify-ca&sslrootcert=/ca.pem').tls).toEqual({
      mode: 'verify-ca',
      rootCertPath: '/ca.pem',
    });
  });

  it.each([
    ['mysql://db', /names no database/],
    ['mysql://db/ncps?parseTime=true', /unknown parameter "parseTime"/],
    ['postgres://db/ncps', /expected mysql:\/\//],
  ])('rejects %s', (url, message) => {
    expect(() => parseMysqlUrl(url)).toThrow(message);
  });
});
