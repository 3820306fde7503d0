import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { LocalStorage } from 'src/storage';

/** NCPS_TEST_MAIN: another build's main.js (a private build while the shared dist is in use). */
const CLI = process.env.NCPS_TEST_MAIN ?? join(__dirname, '../../dist/src/main.js');

async function ncps(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return promisify(execFile)(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH } }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

/** `ncps fsck` as a cron job or systemd timer runs it: the built binary, its exit status and its output streams. */
describe('ncps fsck as a process', () => {
  let dir: string;
  beforeAll(async () => (dir = await mkdtemp(join(tmpdir(), 'ncps-fsck-cli-'))));
  afterAll(() => rm(dir, { recursive: true, force: true }));

  const fsck = (...args: string[]) => ncps(['fsck', '--cache-data-dir', dir, '--log-level', 'info', ...args]);

  it('exits 0 on a clean cache, 1 while an orphan object is left, 0 once repaired, with only JSON on stdout', async () => {
    const clean = await fsck('--json');
    expect(clean.code).toBe(0);
    expect(JSON.parse(clean.stdout)).toMatchObject({ clean: true, left: 0 });
    expect(clean.stderr).toContain('"level":"info"'); // the logs went to stderr, not into the JSON

    const storage = await LocalStorage.open(join(dir, 'storage'));
    const key = `nar/${'1'.repeat(52)}.nar.xz`;
    await storage.put(key, Readable.from([Buffer.from('nothing refers to this')]));

    const found = await fsck('--json');
    expect(found.code).toBe(1);
    expect(JSON.parse(found.stdout)).toMatchObject({ clean: false, left: 1, findings: [{ kind: 'orphan-object', key, outcome: 'found' }] });

    const repaired = await fsck('--repair');
    expect(repaired.code).toBe(0);
    expect(repaired.stdout).toContain(`orphan-object ${key}: `);
    expect(await storage.head(key)).toBeNull();
  }, 60_000);

  it('exits 2 on a usage error', async () => {
    const { code, stderr } = await fsck('--repiar');
    expect(code).toBe(2);
    expect(stderr).toContain("unknown option '--repiar'");
  });
});
