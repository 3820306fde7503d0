import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestPki {
  /** The CA that signed the server certificate: what clients must trust. */
  readonly caFile: string;
  /** A CA that signed nothing here: trusting it alone must fail. */
  readonly otherCaFile: string;
  /** The server certificate (for 127.0.0.1, IP SAN) and its key. */
  readonly certFile: string;
  readonly keyFile: string;
  destroy(): void;
}

function openssl(dir: string, ...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
}

/**
 * A private CA made with openssl in a temporary directory, and a server certificate it signed for
 * 127.0.0.1 (or for `subjectAltName`, e.g. `DNS:localhost`).
 */
export function createTestPki(subjectAltName = 'IP:127.0.0.1'): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'ncps-pki-'));
  for (const name of ['ca', 'other-ca']) {
    openssl(
      dir,
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      `/CN=ncps test ${name}`,
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.pem`,
    );
  }
  openssl(dir, 'req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', 'server.key', '-out', 'server.csr');
  writeFileSync(join(dir, 'server.ext'), `subjectAltName=${subjectAltName}\nextendedKeyUsage=serverAuth,clientAuth\n`);
  openssl(
    dir,
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-days',
    '1',
    '-extfile',
    'server.ext',
    '-out',
    'server.pem',
  );
  return {
    caFile: join(dir, 'ca.pem'),
    otherCaFile: join(dir, 'other-ca.pem'),
    certFile: join(dir, 'server.pem'),
    keyFile: join(dir, 'server.key'),
    destroy: () => rmSync(dir, { recursive: true, force: true }),
  };
}
