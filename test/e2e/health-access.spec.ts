import { rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DatabaseHealthIndicator } from 'src/database';
import { RunningApp, startApp } from 'test/support/app';

const READ = 'read-token';
const WRITE = 'write-token';
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const basic = (token: string) => ({ authorization: `Basic ${Buffer.from(`nix:${token}`).toString('base64')}` });

/**
 * /health tells the public up or down (and the names of what is down); the full report, with its
 * internal paths and driver errors, goes to operators: a client from --health-details-from, or one
 * with the get or put token. Probe runs are shared for a second.
 */
describe('/health: public status, operator details', () => {
  let server: RunningApp;

  async function health(headers: Record<string, string> = {}): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await fetch(`${server.url}/health`, { headers });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  /** Polls past the probe cache until /health answers `status`. */
  async function healthBecomes(status: number): Promise<void> {
    const deadline = Date.now() + 10_000;
    while ((await health()).status !== status && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  }

  describe('from an address outside --health-details-from', () => {
    beforeAll(async () => {
      // 127.0.0.1 (where the test connects from) is not in the range.
      server = await startApp({ 'health-details-from': '10.0.0.0/8', 'cache-get-token': READ, 'cache-put-token': WRITE });
    });
    afterAll(() => server.close());

    it('answers only the status without a token, or with a wrong one', async () => {
      for (const headers of [{}, bearer('wrong'), basic('wrong'), { authorization: 'garbage' }]) {
        const { status, body } = await health(headers);
        expect(status).toBe(200);
        expect(body).toEqual({ status: 'ok' });
      }
    });

    it.each([
      ['the get token (Bearer)', bearer(READ)],
      ['the put token (Bearer)', bearer(WRITE)],
      ['the get token (Basic, as from a netrc)', basic(READ)],
      ['the put token (Basic)', basic(WRITE)],
    ])('gives the full report with %s', async (_what, headers) => {
      const { status, body } = await health(headers);
      expect(status).toBe(200);
      expect(body).toMatchObject({
        status: 'ok',
        details: { database: { status: 'up', dialect: 'better-sqlite3' }, storage: { status: 'up', kind: 'local' } },
      });
    });

    it('is 503 naming what is down, and nothing more, while storage is broken', async () => {
      const root = join(server.dataDir, 'storage');
      await rename(root, `${root}.away`);
      await writeFile(root, 'not a directory');
      try {
        await healthBecomes(503);
        const pub = await health();
        expect(pub).toEqual({ status: 503, body: { status: 'error', down: ['storage'] } });
        const operator = await health(bearer(READ));
        expect(operator.status).toBe(503);
        expect(operator.body).toMatchObject({
          status: 'error',
          reason: 'down: storage',
          error: { storage: { status: 'down', message: expect.any(String) } },
        });
        // The operator's report names the path; the public one does not.
        expect(JSON.stringify(operator.body)).toContain(server.dataDir);
        expect(JSON.stringify(pub.body)).not.toContain(server.dataDir);
      } finally {
        await rm(root, { force: true });
        await rename(`${root}.away`, root);
      }
      await healthBecomes(200);
      expect(await health()).toEqual({ status: 200, body: { status: 'ok' } });
    }, 20_000);
  });

  describe('with the defaults', () => {
    beforeAll(async () => {
      server = await startApp();
    });
    afterAll(() => server.close());

    it('gives loopback the full report without a token', async () => {
      const { status, body } = await health();
      expect(status).toBe(200);
      expect(body).toMatchObject({ status: 'ok', details: { database: { status: 'up' }, locks: { status: 'up' } } });
    });

    it('shares one probe run among the calls of a second', async () => {
      const database = server.app.get(DatabaseHealthIndicator);
      const probe = jest.spyOn(database, 'check');
      try {
        await new Promise((r) => setTimeout(r, 1100)); // past the previous test's run
        const answers = await Promise.all(Array.from({ length: 20 }, () => health()));
        expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));
        expect(probe).toHaveBeenCalledTimes(1);
        await new Promise((r) => setTimeout(r, 1100));
        await health();
        expect(probe).toHaveBeenCalledTimes(2);
      } finally {
        probe.mockRestore();
      }
    });
  });
});
