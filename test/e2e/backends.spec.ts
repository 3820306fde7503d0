import { execFile } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { NixWorkspace } from 'test/support/nix';
import { RunningApp, startApp } from 'test/support/app';
import { createTestDatabase, TestDatabase } from 'test/support/databases';
import { S3rverHandle, startS3rver } from 'test/support/s3rver';

const run = promisify(execFile);
const CLI = join(__dirname, '../../dist/src/main.js');

/**
 * The real Nix client through ncps on every database and storage backend, and a cache moved
 * between databases with `ncps migrate-database` keeping its narinfos and its key.
 */
describe('the Nix client on every backend', () => {
  let nix: NixWorkspace;
  let store: string;
  let top: string;
  const databases: TestDatabase[] = [];
  let s3: S3rverHandle;

  beforeAll(async () => {
    nix = await NixWorkspace.create();
    store = join(nix.dir, 'source');
    await mkdir(store, { recursive: true });
    const [a, b] = await nix.addFiles(store, { 'a.txt': 'a\n', 'b.txt': 'b'.repeat(50_000) });
    top = await nix.buildWithReferences(store, 'top', [a, b]);
    s3 = await startS3rver();
  }, 120_000);

  afterAll(async () => {
    await Promise.all(databases.map((d) => d.drop()));
    await s3?.stop();
    await nix?.dispose();
  });

  async function roundTrip(flags: Record<string, unknown>): Promise<RunningApp> {
    const server = await startApp({ 'cache-allow-put-verb': 'true', ...flags });
    await nix.copyToHttp(store, `${server.url}/upload`, [top]);
    const pubkey = await (await fetch(`${server.url}/pubkey`)).text();
    const client = await nix.copyFromHttp(server.url, pubkey, [top]);
    expect(await nix.readStoreFile(client, top)).toContain('/nix/store/');
    return server;
  }

  it.each(['postgres', 'mysql'] as const)(
    'uploads and downloads with %s',
    async (dialect) => {
      const db = await createTestDatabase(dialect);
      databases.push(db);
      const server = await roundTrip({ 'cache-database-url': db.url });
      await server.close();
    },
    120_000,
  );

  it('uploads and downloads with S3 storage', async () => {
    const server = await roundTrip({
      'cache-storage-s3-bucket': s3.bucket,
      'cache-storage-s3-endpoint': s3.endpoint,
      'cache-storage-s3-region': 'us-east-1',
      'cache-storage-s3-access-key-id': s3.config.accessKeyId,
      'cache-storage-s3-secret-access-key': s3.config.secretAccessKey,
      'cache-storage-s3-force-path-style': 'true',
    });
    await server.close();
  }, 120_000);

  it('migrate-database SQLite → PostgreSQL → MariaDB keeps the narinfos and the public key', async () => {
    const [pg, my] = await Promise.all([createTestDatabase('postgres'), createTestDatabase('mysql')]);
    databases.push(pg, my);
    const source = await roundTrip({});
    const hash = top.slice('/nix/store/'.length, '/nix/store/'.length + 32);
    const pubkey = await (await fetch(`${source.url}/pubkey`)).text();
    const narinfo = await (await fetch(`${source.url}/${hash}.narinfo`)).text();
    const { database, storage } = source.config;
    await source.app.close(); // keep its data directory: the target serves the same storage

    await run(process.execPath, [CLI, 'migrate-database', '--from', database.url, '--to', pg.url]);
    const { stdout } = await run(process.execPath, [CLI, 'migrate-database', '--from', pg.url, '--to', my.url]);
    expect(stdout).toMatch(/narinfos: (\d+) in source, \1 in target/);

    const target = await startApp({
      'cache-database-url': my.url,
      'cache-storage-local': storage.kind === 'local' ? storage.path : '',
    });
    try {
      expect(await (await fetch(`${target.url}/pubkey`)).text()).toBe(pubkey);
      expect(await (await fetch(`${target.url}/${hash}.narinfo`)).text()).toBe(narinfo);
      const client = await nix.copyFromHttp(target.url, pubkey, [top]);
      expect(await nix.readStoreFile(client, top)).toContain('/nix/store/');
    } finally {
      await target.close();
      await rm(source.dataDir, { recursive: true, force: true });
    }
  }, 180_000);
});
