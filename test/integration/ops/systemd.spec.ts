import { ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { readNixFixture } from 'test/fixtures/nix/fixtures';
import { FakeUpstream } from 'test/support/fake-upstream';
import { NcpsProcess } from 'test/support/ncps-process';

const run = promisify(execFile);
const UNIT = join(__dirname, '../../../config/systemd/ncps.service');

/** Directive values of the unit, by name (a directive may repeat). */
function directives(unit: string): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const line of unit.split('\n')) {
    const match = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (match) found.set(match[1], [...(found.get(match[1]) ?? []), match[2]]);
  }
  return found;
}

describe('config/systemd/ncps.service', () => {
  let dir: string;
  let unitCopy: string;

  beforeAll(async () => {
    // verify insists that ExecStart's binary exists: the copy points at a stand-in, nothing else changes.
    dir = await mkdtemp(join(tmpdir(), 'ncps-unit-'));
    const stub = join(dir, 'ncps');
    await writeFile(stub, '#!/bin/sh\nexit 0\n');
    await chmod(stub, 0o755);
    const unit = await readFile(UNIT, 'utf8');
    expect(unit).toMatch(/^ExecStart=\/usr\/local\/bin\/ncps serve$/m);
    unitCopy = join(dir, 'ncps.service');
    await writeFile(unitCopy, unit.replace(/^ExecStart=\/usr\/local\/bin\/ncps /m, `ExecStart=${stub} `));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('passes systemd-analyze verify', async () => {
    const { stderr } = await run('systemd-analyze', ['verify', unitCopy]);
    expect(stderr).toBe('');
  });

  it('keeps its exposure level low (systemd-analyze security at most 2.0)', async () => {
    // --threshold is in tenths: the command fails above 2.0 ("OK" in systemd's scale goes to 4.9).
    const { stdout } = await run('systemd-analyze', ['security', '--offline=true', '--threshold=20', unitCopy]);
    expect(stdout).toMatch(/Overall exposure level for ncps\.service: (?:[01]\.\d|2\.0) /);
  });

  it('is hardened, notifies readiness, reads secrets from an environment file and restarts on failure', async () => {
    const unit = directives(await readFile(UNIT, 'utf8'));
    expect(unit.get('Type')).toEqual(['notify']);
    expect(unit.get('NotifyAccess')).toEqual(['all']);
    expect(unit.get('EnvironmentFile')).toEqual(['-/etc/ncps/ncps.env']);
    expect(unit.get('Restart')).toEqual(['on-failure']);
    expect(unit.get('DynamicUser')).toEqual(['yes']);
    expect(unit.get('StateDirectory')).toEqual(['ncps']);
    expect(unit.get('Environment')).toEqual(['CACHE_DATA_DIR=/var/lib/ncps', 'CACHE_TEMP_PATH=/var/cache/ncps']);
    expect(unit.get('CacheDirectory')).toEqual(['ncps']);
    for (const [name, value] of [
      ['ProtectSystem', 'strict'],
      ['NoNewPrivileges', 'yes'],
      ['PrivateTmp', 'yes'],
      ['ProtectHome', 'yes'],
      ['SystemCallFilter', '@system-service'],
    ]) {
      expect(unit.get(name)).toContain(value);
    }
    expect(unit.get('RestrictAddressFamilies')?.[0].split(' ')).toEqual(expect.arrayContaining(['AF_INET', 'AF_INET6', 'AF_UNIX']));
  });

  it('gives a graceful stop more time than --server-shutdown-timeout takes by default (25s)', async () => {
    const stop = directives(await readFile(UNIT, 'utf8')).get('TimeoutStopSec')?.[0] ?? '';
    expect(Number(/^(\d+)s$/.exec(stop)?.[1])).toBeGreaterThan(25);
  });
});

/** A stand-in for systemd's notification socket: a unix datagram socket (perl: Node has no such sockets). */
class NotifySocket {
  readonly messages: string[] = [];
  private constructor(
    readonly path: string,
    private readonly child: ChildProcess,
  ) {}

  static async listen(path: string): Promise<NotifySocket> {
    const script =
      'use Socket; socket(my $s, PF_UNIX, SOCK_DGRAM, 0) or die "socket: $!"; bind($s, pack_sockaddr_un($ARGV[0])) or die "bind: $!";' +
      ' $| = 1; print "listening\\n"; while (1) { my $m; defined(recv($s, $m, 65536, 0)) or die "recv: $!"; $m =~ s/\\n/ /g; print "$m\\n"; }';
    const child = spawn('perl', ['-e', script, path], { stdio: ['ignore', 'pipe', 'inherit'] });
    const socket = new NotifySocket(path, child);
    child.stdout.setEncoding('utf8');
    let partial = '';
    child.stdout.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      socket.messages.push(...lines);
    });
    while (!socket.messages.includes('listening')) {
      if (child.exitCode !== null) throw new Error('the notify socket stand-in did not start');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return socket;
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = once(this.child, 'exit');
    this.child.kill();
    await exited;
  }
}

/** The built CLI (`npm run build`) as systemd runs it: readiness, SIGHUP, SIGTERM with a download in flight. */
describe('ncps serve as a service process', () => {
  const hash = 'i9pmrzmpshapij2kin22pff6fc2adavx';
  const narPath = '/nar/04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw.nar';
  const nar = readNixFixture('hello.txt.nar');
  let dir: string;
  let upstream: FakeUpstream;
  let notify: NotifySocket;
  let ncps: NcpsProcess;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ncps-service-'));
    upstream = await FakeUpstream.start();
    upstream.serve(`/${hash}.narinfo`, readNixFixture(`narinfo/none/${hash}.narinfo`));
    // 120 bytes over ~1.5 s: long enough to signal while the body is on its way.
    upstream.route(narPath, { body: nar, throttle: { chunkSize: 8, intervalMs: 100 } });
    notify = await NotifySocket.listen(join(dir, 'notify.sock'));
    const publicKey = (await readFile(join(__dirname, '../../fixtures/nix/keys/fixture-1.pk'), 'utf8')).trim();
    ncps = await NcpsProcess.start(
      [
        `--cache-data-dir=${join(dir, 'data')}`,
        `--cache-upstream-url=${upstream.url}`,
        `--cache-upstream-public-key=${publicKey}`,
        '--cache-hostname=ncps-service-test',
      ],
      { NOTIFY_SOCKET: notify.path },
    );
  }, 60_000);

  afterAll(async () => {
    await ncps?.stop();
    await notify?.close();
    await upstream?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('tells systemd it is ready once it listens (READY=1 through systemd-notify)', async () => {
    // systemd-notify returns (and ncps logs) only once the socket has taken the message.
    for (let i = 0; i < 100 && ncps.logged('notified systemd: ready').length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(ncps.logged('notified systemd: ready')).toHaveLength(1);
    expect(notify.messages).toContainEqual(expect.stringMatching(/^READY=1 STATUS=serving on http:\/\/127\.0\.0\.1:\d+$/));
  });

  it('ignores SIGHUP: keeps serving and says so', async () => {
    process.kill(ncps.pid!, 'SIGHUP');
    for (let i = 0; i < 50 && ncps.logged('SIGHUP ignored: restart ncps to apply configuration changes').length === 0; i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(ncps.logged('SIGHUP ignored: restart ncps to apply configuration changes')).toEqual([
      expect.objectContaining({ level: 'warn' }),
    ]);
    expect((await fetch(`${ncps.url}/healthz`)).status).toBe(200);
  });

  it('on SIGTERM finishes the response in flight, then exits 0', async () => {
    expect((await fetch(`${ncps.url}/${hash}.narinfo`)).status).toBe(200);
    const response = await fetch(`${ncps.url}${narPath}`);
    expect(response.status).toBe(200);
    const body = response.arrayBuffer();
    const started = Date.now();
    const exit = ncps.kill('SIGTERM');
    expect(Buffer.from(await body).equals(nar)).toBe(true);
    await expect(exit).resolves.toEqual({ code: 0, signal: null });
    expect(Date.now() - started).toBeLessThan(25_000);
    expect(ncps.logged('shutting down: finishing in-flight work')).toHaveLength(1);
  }, 30_000);
});
