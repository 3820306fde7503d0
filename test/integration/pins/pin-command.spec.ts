import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from 'src/cli/cli';

const hash = '0ffdq8pj7m3lqjbijl3dai1w7fsl3cn1';
const other = '1ffdq8pj7m3lqjbijl3dai1w7fsl3cn2';

/** `ncps pin add|rm|ls` against the SQLite database of a data directory. */
describe('ncps pin', () => {
  let dataDir: string;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'ncps-pin-'));
  });

  afterAll(() => rm(dataDir, { recursive: true, force: true }));

  async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    let stdout = '';
    let stderr = '';
    const out = jest.spyOn(process.stdout, 'write').mockImplementation((chunk) => ((stdout += String(chunk)), true));
    const err = jest.spyOn(process.stderr, 'write').mockImplementation((chunk) => ((stderr += String(chunk)), true));
    try {
      const code = await runCli(['pin', ...args, '--cache-data-dir', dataDir, '--log-level', 'warn'], {});
      return { code, stdout, stderr };
    } finally {
      out.mockRestore();
      err.mockRestore();
    }
  }

  it('pins a store path with a TTL and a bare hash without, lists them, and unpins', async () => {
    const before = Date.now();
    const added = await cli('add', `/nix/store/${hash}-nixos-system-host-24.11`, '--ttl', '30d');
    expect(added).toMatchObject({ code: 0, stderr: '' });
    expect(added.stdout).toMatch(new RegExp(`^pinned ${hash}  expires \\S+  not stored yet\\n$`));
    const expires = Date.parse(/expires (\S+)/.exec(added.stdout)![1]);
    expect(expires - before).toBeGreaterThanOrEqual(30 * 86_400_000);
    expect((await cli('add', other)).stdout).toBe(`pinned ${other}  no expiry  not stored yet\n`);

    const listed = await cli('ls');
    expect(listed.code).toBe(0);
    expect(
      listed.stdout
        .trim()
        .split('\n')
        .map((line) => line.split('  ')[0]),
    ).toEqual([hash, other]);

    expect(await cli('rm', hash)).toMatchObject({ code: 0, stdout: `unpinned ${hash}\n` });
    expect((await cli('ls')).stdout).toBe(`${other}  no expiry  not stored yet\n`);
  });

  it('says what is wrong, and exits 1, for an unknown pin, a bad path or a bad TTL', async () => {
    expect(await cli('rm', hash)).toMatchObject({ code: 1, stderr: 'ncps: no such pin\n' });
    expect(await cli('add', 'hello')).toMatchObject({
      code: 1,
      stderr: expect.stringContaining('neither a store path nor a store path hash'),
    });
    expect(await cli('add', hash, '--ttl', 'soon')).toMatchObject({ code: 1, stderr: expect.stringContaining('invalid ttl') });
    expect((await cli('ls')).stdout).toBe(`${other}  no expiry  not stored yet\n`);
  });
});
