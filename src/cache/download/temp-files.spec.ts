import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tempFileIn } from './temp-files';

describe('tempFileIn', () => {
  const root = mkdtempSync(join(tmpdir(), 'ncps-temp-files-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('writes each batch at its offset, and removes the file', async () => {
    const file = tempFileIn(root);
    const writer = file.create();
    await writer.writeAt([Buffer.from('wor'), Buffer.from('ld')], 6);
    await writer.writeAt([Buffer.from('hello ')], 0);
    await writer.close();
    expect(await readFile(file.path, 'utf8')).toBe('hello world');
    await file.remove();
    expect(existsSync(file.path)).toBe(false);
  });

  it('creates its directory again when it was removed', async () => {
    const dir = join(root, 'removed', 'since');
    const file = tempFileIn(dir);
    const writer = file.create();
    await writer.writeAt([Buffer.from('x')], 0);
    await writer.close();
    expect(await readFile(file.path, 'utf8')).toBe('x');
  });

  it('fails its writes and its close, not the caller of create, when the file cannot be created', async () => {
    const blocked = join(root, 'a-file');
    writeFileSync(blocked, '');
    const writer = tempFileIn(join(blocked, 'below')).create();
    await expect(writer.writeAt([Buffer.from('x')], 0)).rejects.toThrow(/EEXIST|ENOTDIR/);
    await expect(writer.close()).rejects.toThrow(/EEXIST|ENOTDIR/);
  });
});
