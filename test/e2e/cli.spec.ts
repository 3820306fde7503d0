import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { LocalStorage } from 'src/storage';
import { OPTIONS } from 'src/config/options';
import { S3rverHandle, startS3rver } from 'test/support/s3rver';

const CLI = join(__dirname, '../../dist/src/main.js');

/** The built `ncps` binary as an operator runs it. */
async function ncps(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return promisify(execFile)(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH, ...env } }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

describe('the ncps command line', () => {
  let dir: string;
  beforeAll(async () => (dir = await mkdtemp(join(tmpdir(), 'ncps-cli-'))));
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('lists every option of the table, with its environment variable, in serve --help', async () => {
    const { code, stdout } = await ncps(['serve', '--help']);
    expect(code).toBe(0);
    for (const o of OPTIONS) {
      expect(stdout).toContain(`--${o.flag}`);
      expect(stdout).toContain(`env: ${o.env}`);
    }
  });

  it('refuses an unknown flag with a message and a non-zero exit', async () => {
    const { code, stderr } = await ncps(['serve', '--cache-hostnme=x']);
    expect(code).not.toBe(0);
    expect(stderr).toMatch(/unknown option '--cache-hostnme=x'/);
  });

  it('refuses a bad value naming the option, without starting', async () => {
    const { code, stderr } = await ncps(['serve', `--cache-data-dir=${dir}`, '--cache-lock-download-ttl=soon']);
    expect(code).toBe(2);
    expect(stderr).toMatch(/configuration error: --cache-lock-download-ttl: "soon" is not a duration/);
  });

  it('never prints a secret given in a bad value', async () => {
    const { code, stderr } = await ncps(['serve', '--cache-database-url=oracle://admin:hunter2@db/x']);
    expect(code).toBe(2);
    expect(stderr).not.toContain('hunter2');
  });

  it('lists, then applies, pending migrations with migrate up', async () => {
    const url = `sqlite:${join(dir, 'm.sqlite')}`;
    const dry = await ncps(['migrate', 'up', '--dry-run', `--cache-database-url=${url}`]);
    expect(dry.stdout).toMatch(/^would apply InitialSchema/m);
    const up = await ncps(['migrate', 'up', `--cache-database-url=${url}`]);
    expect(up.stdout).toMatch(/^applied InitialSchema/m);
    const again = await ncps(['migrate', 'up', `--cache-database-url=${url}`]);
    expect(again.stdout).toBe('database schema is up to date\n');
  });

  describe('migrate-storage', () => {
    let s3: S3rverHandle;
    beforeAll(async () => (s3 = await startS3rver()));
    afterAll(() => s3.stop());

    it('copies a local store to S3 and back, and a rerun copies nothing', async () => {
      const local = join(dir, 'local');
      const seed = await LocalStorage.open(local);
      await seed.put(`nar/${'1'.repeat(52)}.nar`, Readable.from([Buffer.from('nar bytes')]));
      await seed.close();
      const s3Flags = [
        `--cache-storage-s3-bucket=${s3.bucket}`,
        `--cache-storage-s3-endpoint=${s3.endpoint}`,
        '--cache-storage-s3-region=us-east-1',
        '--cache-storage-s3-force-path-style=true',
      ];
      const env = { CACHE_STORAGE_S3_ACCESS_KEY_ID: 'S3RVER', CACHE_STORAGE_S3_SECRET_ACCESS_KEY: 'S3RVER' };
      const there = await ncps(['migrate-storage', '--from', `local:${local}`, '--to', 's3', ...s3Flags], env);
      expect(there.stdout).toMatch(/copied 1, skipped 0, failed 0, 9 bytes/);
      const rerun = await ncps(['migrate-storage', '--from', `local:${local}`, '--to', 's3', ...s3Flags], env);
      expect(rerun.stdout).toMatch(/copied 0, skipped 1, failed 0/);
      const back = await ncps(['migrate-storage', '--from', 's3', '--to', `local:${join(dir, 'back')}`, ...s3Flags], env);
      expect(back.stdout).toMatch(/copied 1, skipped 0, failed 0, 9 bytes/);
    });

    it('refuses a source directory that does not exist', async () => {
      const { code, stderr } = await ncps(['migrate-storage', '--from', `local:${join(dir, 'nope')}`, '--to', `local:${dir}/x`]);
      expect(code).not.toBe(0);
      expect(stderr).toMatch(/does not exist/);
    });
  });
});
