import { createTestDatabase, TestDatabase } from 'test/support/databases';
import { RunningApp, startApp } from 'test/support/app';
import { freePort } from 'test/support/ncps-process';

const READ = 'read-token';
const bearer = { authorization: `Bearer ${READ}` };

interface ClusterDetail {
  status: string;
  instance: string;
  advertiseUrl?: string;
  advertiseCheck: string;
  reason?: string;
  fix?: string;
}

/**
 * With a distributed lock backend each instance checks at start that its advertise URL (by default
 * its own listening address) reaches itself, through its id at GET /_ncps/instance; a URL that does
 * not is shown in /health details, without making /health fail.
 */
describe('the advertise URL self-check (PostgreSQL locks)', () => {
  let db: TestDatabase;
  const apps: RunningApp[] = [];

  const start = async (flags: Record<string, unknown> = {}): Promise<RunningApp> => {
    const app = await startApp({ 'cache-database-url': db.url, 'cache-lock-backend': 'postgres', 'cache-get-token': READ, ...flags });
    apps.push(app);
    return app;
  };

  /** /health (from loopback: with details) once the check has an outcome. */
  async function checked(app: RunningApp): Promise<{ status: number; cluster: ClusterDetail }> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const res = await fetch(`${app.url}/health`);
      const body = (await res.json()) as { details: { cluster: ClusterDetail } };
      if (body.details.cluster.advertiseCheck !== 'pending' || Date.now() > deadline)
        return { status: res.status, cluster: body.details.cluster };
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  beforeAll(async () => {
    db = await createTestDatabase('postgres');
  });

  afterAll(async () => {
    for (const app of apps) await app.close();
    await db?.drop();
  });

  it('passes with the default advertise URL, the listening address', async () => {
    const app = await start();
    const { status, cluster } = await checked(app);
    expect(status).toBe(200);
    expect(cluster).toEqual({ status: 'up', instance: expect.any(String), advertiseUrl: app.url, advertiseCheck: 'ok' });
  });

  it('serves the instance id at /_ncps/instance, behind the get token like the other peer routes', async () => {
    const [app] = apps;
    expect((await fetch(`${app.url}/_ncps/instance`)).status).toBe(401);
    const res = await fetch(`${app.url}/_ncps/instance`, { headers: bearer });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ id: (await checked(app)).cluster.instance });
  });

  it('reports an advertise URL that reaches another instance, and stays up', async () => {
    const [other] = apps;
    const app = await start({ 'server-advertise-url': other.url });
    const { status, cluster } = await checked(app);
    expect(status).toBe(200);
    expect(cluster).toMatchObject({
      status: 'up',
      advertiseUrl: other.url,
      advertiseCheck: 'failed',
      reason: expect.stringMatching(/^another ncps instance answered/),
      fix: expect.stringContaining('--server-advertise-url'),
    });
  });

  it('reports an advertise URL that reaches nothing', async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    const app = await start({ 'server-advertise-url': closed });
    const { cluster } = await checked(app);
    expect(cluster).toMatchObject({ advertiseUrl: closed, advertiseCheck: 'failed', reason: 'unreachable: ECONNREFUSED' });
  });

  it('answers 421 at once to a peer request meant for another instance', async () => {
    const [app] = apps;
    const res = await fetch(`${app.url}/_ncps/downloads/nar/${'0'.repeat(52)}.nar`, {
      headers: { ...bearer, 'x-ncps-instance': 'someone-else' },
    });
    expect(res.status).toBe(421);
  });
});

describe('the advertise URL with local locks', () => {
  it('is not checked: a single instance streams to no one', async () => {
    const app = await startApp();
    try {
      const body = (await (await fetch(`${app.url}/health`)).json()) as { details: { cluster: ClusterDetail } };
      expect(body.details.cluster).toMatchObject({ status: 'up', advertiseUrl: app.url, advertiseCheck: 'skipped' });
    } finally {
      await app.close();
    }
  });
});
