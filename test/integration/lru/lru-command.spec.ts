import { rm } from 'node:fs/promises';
import { runCli } from 'src/cli/cli';
import { startApp } from 'test/support/app';
import { makeNar, status, uploadPath } from './lru.fixtures';

const KIB = 1024;

/** `ncps lru run` on the data directory a server filled (SQLite, local storage). */
describe('ncps lru run', () => {
  let dataDir: string;
  let hashes: string[];

  beforeAll(async () => {
    const server = await startApp({ 'cache-allow-put-verb': 'true' });
    dataDir = server.dataDir;
    hashes = [];
    for (let i = 0; i < 3; i++) hashes.push(await uploadPath(server.url, makeNar(64 * KIB)));
    await server.app.close();
  });

  afterAll(() => rm(dataDir, { recursive: true, force: true }));

  async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    let stdout = '';
    let stderr = '';
    const out = jest.spyOn(process.stdout, 'write').mockImplementation((chunk) => ((stdout += String(chunk)), true));
    const err = jest.spyOn(process.stderr, 'write').mockImplementation((chunk) => ((stderr += String(chunk)), true));
    try {
      const code = await runCli(['lru', 'run', '--cache-data-dir', dataDir, '--log-level', 'warn', ...args], {});
      return { code, stdout, stderr };
    } finally {
      out.mockRestore();
      err.mockRestore();
    }
  }

  it('refuses to run without --cache-max-size', async () => {
    const { code, stderr } = await cli();
    expect(code).toBe(2);
    expect(stderr).toContain('ncps lru run needs --cache-max-size');
  });

  it('runs one pass down to the limit and prints what it did', async () => {
    const { code, stdout } = await cli('--cache-max-size', '100K');

    expect(code).toBe(0);
    expect(stdout).toContain(
      `evicted 2 narinfos and 2 NAR files (${128 * KIB} bytes); stored size ${192 * KIB} → ${64 * KIB} bytes, limit ${100 * KIB}`,
    );
    const server = await startApp({ 'cache-data-dir': dataDir });
    try {
      const statuses = await Promise.all(hashes.map((hash) => status(`${server.url}/${hash}.narinfo`)));
      expect(statuses).toEqual([404, 404, 200]);
    } finally {
      await server.app.close();
    }
  });
});
