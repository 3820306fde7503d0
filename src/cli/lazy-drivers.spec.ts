import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

/**
 * A server on the embedded defaults (SQLite, local storage, local locks) must not load the drivers of
 * backends it does not use: each costs start-up time and resident memory. A fresh process
 * loads the CLI with everything it imports, as main.ts does, and creates the configured providers
 * through their factories; then the modules it holds are listed.
 */
const ROOT = join(__dirname, '../..');
const UNUSED_BY_DEFAULTS = [
  '@aws-sdk/client-s3',
  '@aws-sdk/lib-storage',
  'mysql2',
  'pg',
  'ioredis',
  'redlock',
  'yaml',
  'lzma-native',
  'zstd-napi',
];

async function packagesLoadedWith(storage: object): Promise<string[]> {
  const script = `
    require('reflect-metadata');
    require('src/cli/cli');
    const { mkdtempSync, rmSync } = require('node:fs');
    const { join } = require('node:path');
    const { tmpdir } = require('node:os');
    const { Registry } = require('prom-client');
    const { createStorage } = require('src/storage');
    const { createLockPort } = require('src/locking/lock.factory');
    (async () => {
      const dir = mkdtempSync(join(tmpdir(), 'ncps-lazy-'));
      try {
        const storage = ${JSON.stringify(storage)};
        await createStorage(storage.kind === 'local' ? { ...storage, path: dir } : storage);
        await createLockPort({ lock: { backend: 'local' } }, new Registry());
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      const files = Object.keys(require.cache);
      const loaded = ${JSON.stringify(UNUSED_BY_DEFAULTS)}.filter((p) => files.some((f) => f.includes('/node_modules/' + p + '/')));
      process.stdout.write('\\nLOADED ' + JSON.stringify(loaded) + '\\n');
    })().catch((e) => { console.error(e); process.exit(1); });
  `;
  const { stdout } = await promisify(execFile)(process.execPath, ['-r', join(ROOT, 'test/support/lock-child-register.js'), '-e', script], {
    cwd: ROOT,
  });
  const line = /^LOADED (.*)$/m.exec(stdout)?.[1];
  if (!line) throw new Error(`no result from the child:\n${stdout}`);
  return JSON.parse(line) as string[];
}

describe('drivers of unused backends', () => {
  it('are not loaded by a server on the embedded defaults', async () => {
    await expect(packagesLoadedWith({ kind: 'local' })).resolves.toEqual([]);
  });

  it('are loaded when configured (the check sees them)', async () => {
    const s3 = { kind: 's3', s3: { bucket: 'ncps-lazy', region: 'us-east-1', forcePathStyle: true } };
    await expect(packagesLoadedWith(s3)).resolves.toEqual(['@aws-sdk/client-s3', '@aws-sdk/lib-storage']);
  });
});
