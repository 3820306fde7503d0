import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './lock-redis-server';
import { createTestPki, TestPki } from './redis-tls';

/** Where Debian puts the server binaries (PGBIN overrides it). */
const BIN = process.env.PGBIN ?? '/usr/lib/postgresql/15/bin';

/** A PostgreSQL server of the test's own, serving TLS (and plain text) on 127.0.0.1. */
export interface TlsPostgres {
  readonly port: number;
  /** The private CA that signed the server certificate (for `localhost`, 127.0.0.1 and ::1). */
  readonly caFile: string;
  /** A plain-text admin URL, for looking at the server from outside what is under test. */
  readonly adminUrl: string;
  stop(): Promise<void>;
}

/**
 * Whether this machine can run a private PostgreSQL server. Outside CI a test may skip when it cannot;
 * under CI=true a missing server is a failure (design.md), so this then says yes and the start fails.
 */
export function canStartPostgres(): boolean {
  return Boolean(process.env.CI) || existsSync(join(BIN, 'initdb'));
}

/**
 * initdb + postgres in a temporary directory, with `ssl=on` and a server certificate signed by a CA
 * made for the occasion. Trust authentication; `host` lines of pg_hba accept TLS and plain connections
 * alike, so a test can check both. PostgreSQL refuses to run as root: as root, it runs as the
 * `postgres` user, which then owns the directory.
 */
export async function startTlsPostgres(): Promise<TlsPostgres> {
  for (const tool of ['initdb', 'postgres']) {
    if (!existsSync(join(BIN, tool))) throw new Error(`${join(BIN, tool)} not found: install PostgreSQL's server (or set PGBIN)`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'ncps-pgtls-'));
  const data = join(dir, 'data');
  let pki: TestPki | undefined;
  let server: ChildProcess | undefined;
  try {
    const owner = process.getuid?.() === 0 ? postgresUser() : undefined;
    pki = createTestPki('DNS:localhost,IP:127.0.0.1,IP:::1');
    // The key must belong to the server's user and be private to it.
    const certFile = join(dir, 'server.crt');
    const keyFile = join(dir, 'server.key');
    copyFileSync(pki.certFile, certFile);
    copyFileSync(pki.keyFile, keyFile);
    chmodSync(keyFile, 0o600);
    if (owner) for (const path of [dir, certFile, keyFile]) chownSync(path, owner.uid, owner.gid);

    execFileSync(join(BIN, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '--no-locale', '-E', 'UTF8'], {
      ...owner,
      cwd: dir,
      stdio: 'pipe',
    });
    const port = await freePort();
    server = spawn(
      join(BIN, 'postgres'),
      [
        '-D',
        data,
        '-p',
        String(port),
        '-k',
        dir,
        '-c',
        'listen_addresses=localhost',
        '-c',
        'ssl=on',
        '-c',
        `ssl_cert_file=${certFile}`,
        '-c',
        `ssl_key_file=${keyFile}`,
        '-c',
        'fsync=off',
        '-c',
        'max_connections=30',
      ],
      { ...owner, cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    await ready(server);
    const running = server;
    const caFile = join(dir, 'ca.pem');
    copyFileSync(pki.caFile, caFile);
    pki.destroy();
    return {
      port,
      caFile,
      adminUrl: `postgres://postgres@127.0.0.1:${port}/postgres?sslmode=disable`,
      stop: async () => {
        await stop(running);
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    if (server) await stop(server);
    pki?.destroy();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

function postgresUser(): { uid: number; gid: number } {
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}

/** Resolves when the server logs that it accepts connections; rejects if it exits first. */
function ready(server: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let log = '';
    const onData = (chunk: Buffer): void => {
      log += chunk.toString();
      if (log.includes('ready to accept connections')) {
        server.stderr?.off('data', onData);
        server.off('exit', onExit);
        server.stderr?.resume();
        resolve();
      }
    };
    const onExit = (code: number | null): void => reject(new Error(`postgres exited (${code}) before it was ready:\n${log}`));
    server.stderr?.on('data', onData);
    server.once('exit', onExit);
  });
}

/** Fast shutdown (SIGINT: sessions are ended), waiting for the process to go. */
function stop(server: ChildProcess): Promise<void> {
  if (server.exitCode !== null || server.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    server.once('exit', () => resolve());
    server.kill('SIGINT');
  });
}
