import { parsePostgresUrl } from './postgres-url';

describe('parsePostgresUrl', () => {
  it('reads user, password, host, port and database, percent-decoded', () => {
    const sut = parsePostgresUrl('postgresql://ncps:p%40ss%2Fw0rd@db.example:6543/ncps%5Fprod');

    expect(sut).toEqual({
      host: 'db.example',
      port: 6543,
      user: 'ncps',
      password: 'p@ss/w0rd',
      database: 'ncps_prod',
      tls: { mode: 'disable' },
      applicationName: undefined,
      connectTimeoutMs: undefined,
    });
  });

  it('accepts postgres:// too and leaves what is absent to the driver defaults', () => {
    expect(parsePostgresUrl('postgres://db')).toMatchObject({ host: 'db', port: undefined, user: undefined, database: undefined });
  });

  it('takes a unix socket directory from ?host=, with or without credentials before it', () => {
    expect(parsePostgresUrl('postgresql:///ncps?host=/var/run/postgresql')).toMatchObject({ host: '/var/run/postgresql', database: 'ncps' });
    expect(parsePostgresUrl('postgres://ncps:pw@/ncps?host=%2Frun%2Fpostgresql')).toMatchObject({
      host: '/run/postgresql',
      user: 'ncps',
      password: 'pw',
    });
  });

  it('reads an IPv6 host', () => {
    expect(parsePostgresUrl('postgres://[::1]:5433/ncps')).toMatchObject({ host: '::1', port: 5433 });
  });

  it('reads sslmode and certificate paths, application_name and connect_timeout', () => {
    const sut = parsePostgresUrl(
      'postgres://db/ncps?sslmode=verify-full&sslrootcert=/etc/ca.pem&sslcert=/c.pem&sslkey=/k.pem&application_name=ncps-eu&connect_timeout=5',
    );

    expect(sut.tls).toEqual({ mode: 'verify-full', rootCertPath: '/etc/ca.pem', certPath: '/c.pem', keyPath: '/k.pem' });
    expect(sut.applicationName).toBe('ncps-eu');
    expect(sut.connectTimeoutMs).toBe(5000);
  });

  it.each([
    ['mysql://db/ncps', /expected postgres:\/\//],
    ['postgres://db/ncps?sslmode=sometimes', /sslmode must be one of disable, allow, prefer, require, verify-ca, verify-full/],
    ['postgres://db/ncps?search_path=x', /unknown parameter "search_path"/],
    ['postgres://db:0/ncps', /port must be 1-65535/],
    ['postgres://a:5432,b:5432/ncps', /several hosts/],
    ['postgres://db/ncps?connect_timeout=1.5', /connect_timeout must be whole seconds/],
  ])('rejects %s', (url, message) => {
    expect(() => parsePostgresUrl(url)).toThrow(message);
  });

  it('never puts the password in its errors', () => {
    expect(() => parsePostgresUrl('postgres://ncps:hunter2@db:99999/ncps')).toThrow(expect.objectContaining({ message: expect.not.stringContaining('hunter2') }));
  });
});
