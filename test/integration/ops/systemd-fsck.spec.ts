import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const UNITS = join(__dirname, '../../../config/systemd');

/** The weekly `ncps fsck --repair` of the README: a oneshot service and its timer. */
describe('config/systemd/ncps-fsck.service and .timer', () => {
  let dir: string;

  beforeAll(async () => {
    // verify insists that ExecStart's binary exists: the copies point at a stand-in, nothing else changes.
    dir = await mkdtemp(join(tmpdir(), 'ncps-fsck-unit-'));
    const stub = join(dir, 'ncps');
    await writeFile(stub, '#!/bin/sh\nexit 0\n');
    await chmod(stub, 0o755);
    const service = await readFile(join(UNITS, 'ncps-fsck.service'), 'utf8');
    expect(service).toMatch(/^ExecStart=\/usr\/local\/bin\/ncps fsck --repair$/m);
    await writeFile(join(dir, 'ncps-fsck.service'), service.replace(/^ExecStart=\/usr\/local\/bin\/ncps /m, `ExecStart=${stub} `));
    await writeFile(join(dir, 'ncps-fsck.timer'), await readFile(join(UNITS, 'ncps-fsck.timer'), 'utf8'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('pass systemd-analyze verify', async () => {
    const { stderr } = await run('systemd-analyze', ['verify', join(dir, 'ncps-fsck.service'), join(dir, 'ncps-fsck.timer')]);
    expect(stderr).toBe('');
  });

  it('run fsck as the dynamic user of ncps.service, with its settings, on a schedule', async () => {
    const service = await readFile(join(UNITS, 'ncps-fsck.service'), 'utf8');
    expect(service).toMatch(/^Type=oneshot$/m);
    expect(service).toMatch(/^DynamicUser=yes$/m);
    expect(service).toMatch(/^User=ncps$/m);
    expect(service).toMatch(/^EnvironmentFile=-\/etc\/ncps\/ncps\.env$/m);
    expect(await readFile(join(UNITS, 'ncps-fsck.timer'), 'utf8')).toMatch(/^OnCalendar=\S+$/m);
  });
});
