import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from 'src/config/option';
import { parsePostgresUrl, postgresConnectionOptions } from './postgres-url';

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
    expect(parsePostgresUrl('postgresql:///ncps?host=/var/run/postgresql')).toMatchObject({
      host: '/var/run/postgresql',
      database: 'ncps',
    });
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
    expect(() => parsePostgresUrl('postgres://ncps:hunter2@db:99999/ncps')).toThrow(
      expect.objectContaining({ message: expect.not.stringContaining('hunter2') }),
    );
  });
});

describe('postgresConnectionOptions', () => {
  let dir: string;
  let ca: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ncps-pgurl-'));
    ca = join(dir, 'ca.pem');
    writeFileSync(ca, 'the CA');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('gives pg every connection setting, TLS always explicit', () => {
    expect(postgresConnectionOptions('postgresql://ncps:p%40ss@db.example:6543/ncps?application_name=eu&connect_timeout=3')).toEqual({
      host: 'db.example',
      port: 6543,
      user: 'ncps',
      password: 'p@ss',
      database: 'ncps',
      ssl: false,
      application_name: 'eu',
      connectionTimeoutMillis: 3000,
    });
  });

  it.each([
    ['disable', false],
    ['allow', false],
    ['prefer', false],
    ['require', { rejectUnauthorized: false }],
    ['verify-ca', { rejectUnauthorized: true, checkServerIdentity: expect.any(Function) }],
    ['verify-full', { rejectUnauthorized: true }],
  ])('sslmode=%s maps as libpq does (pg cannot fall back, so allow/prefer stay plain)', (mode, ssl) => {
    expect(postgresConnectionOptions(`postgres://db/ncps?sslmode=${mode}`).ssl).toEqual(ssl);
  });

  it('verify-full trusts sslrootcert and checks the host name (no identity override)', () => {
    const { ssl } = postgresConnectionOptions(`postgres://db/ncps?sslmode=verify-full&sslrootcert=${ca}`);

    expect(ssl).toEqual({ ca: Buffer.from('the CA'), rejectUnauthorized: true });
  });

  it('require with sslrootcert checks the chain, as libpq does (verify-ca)', () => {
    const { ssl } = postgresConnectionOptions(`postgres://db/ncps?sslmode=require&sslrootcert=${ca}`);

    expect(ssl).toMatchObject({ ca: Buffer.from('the CA'), rejectUnauthorized: true });
    expect(ssl && ssl.checkServerIdentity?.('other.host', {} as never)).toBeUndefined();
  });

  it('sslrootcert=system means the built-in trust store and verify-full', () => {
    expect(postgresConnectionOptions('postgres://db/ncps?sslrootcert=system').ssl).toEqual({ rejectUnauthorized: true });
    expect(() => postgresConnectionOptions('postgres://db/ncps?sslmode=require&sslrootcert=system')).toThrow(
      /sslrootcert=system needs sslmode=verify-full/,
    );
  });

  it('uses no TLS over a unix socket, as libpq', () => {
    expect(postgresConnectionOptions('postgres://ncps@/ncps?host=/run/postgresql&sslmode=require')).toMatchObject({
      host: '/run/postgresql',
      ssl: false,
    });
  });

  it.each([
    'postgres://ncps:hunter2@db/ncps?sslmode=sometimes',
    'postgres://ncps:hunter2@db:99999/ncps',
    'postgres://ncps:hunter2@db/ncps?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem',
  ])('reports %s as a ConfigError without the password', (url) => {
    let error: unknown;
    try {
      postgresConnectionOptions(url);
    } catch (e) {
      error = e;
    }

    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(/^database URL postgres:\/\/ncps:\*\*\*@db/);
    expect((error as Error).message).not.toContain('hunter2');
  });
});
