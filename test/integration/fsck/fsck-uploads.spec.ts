import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { runCli } from 'src/cli/cli';
import { pathOf } from 'src/storage/providers/local.layout';
import { RunningApp, startApp } from 'test/support/app';
import { makeNar, status, uploadPath } from 'test/integration/lru/lru.fixtures';

/**
 * An uploaded path has no upstream: once its NAR is lost, serving answers 404 for the NAR (and counts
 * it), and `fsck --repair` deletes its narinfo too, so clients see a plain miss instead of a narinfo
 * whose NAR fails. Run against a serving instance.
 */
describe('ncps fsck and an uploaded path whose NAR is lost', () => {
  let server: RunningApp;

  beforeAll(async () => {
    server = await startApp({ 'cache-allow-put-verb': 'true', 'prometheus-enabled': 'true' });
  });
  afterAll(() => server?.close());

  async function fsck(...args: string[]): Promise<{ code: number; stdout: string }> {
    let stdout = '';
    const out = jest.spyOn(process.stdout, 'write').mockImplementation((chunk) => ((stdout += String(chunk)), true));
    try {
      return { code: await runCli(['fsck', '--cache-data-dir', server.dataDir, '--log-level', 'warn', ...args], {}), stdout };
    } finally {
      out.mockRestore();
    }
  }

  const missingObjects = async () =>
    Number(/^ncps_nar_missing_objects_total (\d+)$/m.exec(await (await fetch(`${server.url}/metrics`)).text())?.[1]);

  it('answers 404 for the NAR and counts it; the repair deletes the row and then the narinfo', async () => {
    const nar = makeNar(4096);
    const hash = await uploadPath(server.url, nar);
    await rm(join((server.config.storage as { path: string }).path, pathOf(nar.url)));
    const before = await missingObjects();

    expect(await status(`${server.url}/${nar.url}`)).toBe(404);
    expect(await missingObjects()).toBe(before + 1);

    // A fresh upload is spared (its NAR may still be on its way); this one is old.
    const spared = await fsck();
    expect(spared.stdout).toMatch(new RegExp(`^missing-object ${nar.url}: `, 'm'));
    expect(spared.stdout).not.toContain('unservable-narinfo');
    await server.app.get(DataSource).query('UPDATE narinfos SET created_at = ? WHERE hash = ?', [Date.now() - 3_600_000, hash]);

    const repair = await fsck('--repair');
    expect(repair.code).toBe(0);
    expect(repair.stdout).toMatch(new RegExp(`^missing-object ${nar.url}: .* — repaired: deleted its nar_files row`, 'm'));
    expect(repair.stdout).toMatch(new RegExp(`^unservable-narinfo ${hash}\\.narinfo: .* — repaired: deleted the narinfo`, 'm'));
    expect(await status(`${server.url}/${hash}.narinfo`)).toBe(404);
    expect(await fsck()).toMatchObject({ code: 0 });
  });
});
