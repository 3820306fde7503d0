import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tlsOptions, tlsSettings } from './tls-options';

const settings = (query: string) => tlsSettings(new URLSearchParams(query));

describe('tlsOptions', () => {
  it.each(['', 'sslmode=disable', 'sslmode=allow', 'sslmode=prefer'])('connects in plain text for "%s"', (query) => {
    expect(tlsOptions(settings(query))).toBe(false);
  });

  it('require encrypts without checking the certificate', () => {
    expect(tlsOptions(settings('sslmode=require'))).toEqual({ rejectUnauthorized: false });
  });

  it('verify-ca checks the chain but not the host name', () => {
    const sut = tlsOptions(settings('sslmode=verify-ca'));

    expect(sut).toMatchObject({ rejectUnauthorized: true });
    expect(sut && sut.checkServerIdentity?.('other.host', {} as never)).toBeUndefined();
  });

  it('verify-full checks chain and host name, with the given CA and client certificate', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ncps-tls-'));
    for (const name of ['ca.pem', 'cert.pem', 'key.pem']) writeFileSync(join(dir, name), name);

    const sut = tlsOptions(settings(`sslmode=verify-full&sslrootcert=${dir}/ca.pem&sslcert=${dir}/cert.pem&sslkey=${dir}/key.pem`));
    rmSync(dir, { recursive: true });

    expect(sut).toEqual({
      rejectUnauthorized: true,
      ca: Buffer.from('ca.pem'),
      cert: Buffer.from('cert.pem'),
      key: Buffer.from('key.pem'),
    });
  });

  it('require with a root certificate checks the chain, as libpq (verify-ca)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ncps-tls-'));
    writeFileSync(join(dir, 'ca.pem'), 'ca');

    const sut = tlsOptions(settings(`sslmode=require&sslrootcert=${dir}/ca.pem`));
    rmSync(dir, { recursive: true });

    expect(sut).toMatchObject({ ca: Buffer.from('ca'), rejectUnauthorized: true });
    expect(sut && sut.checkServerIdentity?.('other.host', {} as never)).toBeUndefined();
  });

  it('sslrootcert=system reads no file and implies verify-full', () => {
    expect(settings('sslrootcert=system').mode).toBe('verify-full');
    expect(tlsOptions(settings('sslrootcert=system'))).toEqual({ rejectUnauthorized: true });
    expect(() => settings('sslmode=verify-ca&sslrootcert=system')).toThrow('sslrootcert=system needs sslmode=verify-full, not verify-ca');
  });
});
