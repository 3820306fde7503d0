import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SecretKeyFile } from './secret-key.file';

describe('SecretKeyFile', () => {
  it('reads the file, and names the path and the error code (never the content) when it cannot', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ncps-key-'));
    try {
      await writeFile(join(dir, 'key'), 'cache-1:c2VjcmV0\n');
      const sut = new SecretKeyFile();
      await expect(sut.read(join(dir, 'key'))).resolves.toBe('cache-1:c2VjcmV0\n');
      await expect(sut.read(join(dir, 'missing'))).rejects.toThrow(`--cache-secret-key-path: cannot read ${join(dir, 'missing')}: ENOENT`);
      await expect(sut.read(dir)).rejects.toThrow(/: EISDIR$/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
