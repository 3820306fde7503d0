import { randomUUID } from 'node:crypto';
import { close, createWriteStream, fstatSync, open as openDescriptor } from 'node:fs';
import { link, mkdir, open, opendir, readFile, readdir, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ByteRange, OpenedObject, PutResult, StoragePort, StoredObject, assertSafeKey } from 'src/storage/storage.port';
import { discard } from 'src/storage/storage.discard';
import { errorCode, errorMessage } from 'src/common/error-fields';
import { assertSafePrefix, assertValidRange, unsatisfiableRange } from 'src/storage/storage.validation';
import { TEMP_DIR, keyOf, listingDirOf, pathOf } from './local.layout';
import { FileReadStream } from './local.read-stream';

/**
 * A temporary file untouched this long was left by a crash (a live writer touches its file with every
 * chunk). Generous, because a second process may share the directory, e.g. while a service restarts.
 */
const STALE_TEMP_AGE_MS = 60 * 60 * 1000;

/** Objects as files under `root`, laid out by local.layout.ts; writes go through `root/.tmp`. */
export class LocalStorage extends StoragePort {
  readonly kind = 'local';
  readonly root: string;
  private readonly tempDir: string;

  /** Does no I/O: `open` prepares the directory; `check` explains what is wrong with it. */
  constructor(root: string) {
    super();
    this.root = resolve(root);
    this.tempDir = join(this.root, TEMP_DIR);
  }

  /** Creates the directory if needed and removes temporary files left by a crash. */
  static async open(root: string): Promise<LocalStorage> {
    const storage = new LocalStorage(root);
    try {
      await mkdir(storage.tempDir, { recursive: true });
      await storage.removeStaleTempFiles();
    } catch (error) {
      throw storage.explain(error);
    }
    return storage;
  }

  /**
   * Streams into a temporary file on the same filesystem, fsyncs it, then hard-links it under its
   * final name. link() (unlike rename) fails when the name exists, so of several concurrent writers
   * exactly one creates the object and the others keep it; readers only ever see a complete file.
   */
  async put(key: string, source: Readable): Promise<PutResult> {
    assertSafeKey(key);
    const target = join(this.root, pathOf(key));
    const existing = await statOrNull(target);
    if (existing) {
      await discard(source);
      return { size: existing.size, created: false };
    }
    const temporary = join(this.tempDir, `${randomUUID()}.part`);
    try {
      await pipeline(source, createWriteStream(temporary, { flags: 'wx', flush: true }));
      return await this.linkAs(temporary, target, (await stat(temporary)).size);
    } finally {
      await rm(temporary, { force: true });
    }
  }

  /**
   * Takes the file as it is when it is on this filesystem: synced, then hard-linked under its final
   * name (as `put` does with its own temporary file), so no byte is copied. Across filesystems (a
   * --cache-temp-path elsewhere, e.g. on a tmpfs) it is copied as a stream.
   */
  override async putFile(key: string, path: string): Promise<PutResult> {
    assertSafeKey(key);
    const target = join(this.root, pathOf(key));
    const existing = await statOrNull(target);
    if (existing) return { size: existing.size, created: false };
    const file = await open(path, 'r');
    let size: number;
    try {
      await file.sync();
      size = (await file.stat()).size;
    } finally {
      await file.close();
    }
    try {
      return await this.linkAs(path, target, size);
    } catch (error) {
      const code = errorCode(error);
      if (code === 'EXDEV' || code === 'EPERM') return super.putFile(key, path);
      throw error;
    }
  }

  /**
   * Gives the synced file at `file` its final name `target`. link() (unlike rename) fails when the
   * name exists: then the existing object is kept, and `created` is false.
   */
  private async linkAs(file: string, target: string, size: number): Promise<PutResult> {
    const dir = dirname(target);
    await mkdir(dir, { recursive: true });
    try {
      await link(file, target);
    } catch (error) {
      if (errorCode(error) !== 'EEXIST') throw error;
      return { size: (await stat(target)).size, created: false };
    }
    // The new directory entry survives a power loss only once its directory is synced.
    await syncDirectory(dir);
    return { size, created: true };
  }

  async head(key: string): Promise<StoredObject | null> {
    assertSafeKey(key);
    const stats = await statOrNull(join(this.root, pathOf(key)));
    return stats ? { key, size: stats.size } : null;
  }

  async read(key: string, range?: ByteRange): Promise<Readable | null> {
    if (range) assertValidRange(range);
    return (await this.openRead(key, range && (() => range)))?.stream ?? null;
  }

  async openRead(key: string, pickRange?: (size: number) => ByteRange | undefined): Promise<OpenedObject | null> {
    assertSafeKey(key);
    let fd: number;
    try {
      // Opened before returning so a missing file is null, not a stream that fails later; a delete
      // after this point does not disturb the reader (the inode lives while it is open).
      fd = await openForReading(join(this.root, pathOf(key)));
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return null;
      throw error;
    }
    try {
      // The inode of a file just opened is in memory: its fstat does not need the thread pool.
      const { size } = fstatSync(fd);
      const wanted = pickRange?.(size);
      if (wanted) {
        assertValidRange(wanted);
        if (wanted.start >= size) throw unsatisfiableRange(key, wanted);
      }
      const range = wanted && { start: wanted.start, end: Math.min(wanted.end, size - 1) };
      return { size, range, stream: new FileReadStream(fd, range?.start ?? 0, range?.end ?? size - 1) };
    } catch (error) {
      close(fd, () => undefined);
      throw error;
    }
  }

  async delete(key: string): Promise<boolean> {
    assertSafeKey(key);
    try {
      await unlink(join(this.root, pathOf(key)));
      return true;
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return false;
      throw error;
    }
  }

  async *list(prefix = ''): AsyncIterable<StoredObject> {
    assertSafePrefix(prefix);
    const dir = listingDirOf(prefix);
    for await (const relativePath of walkFiles(join(this.root, dir), dir)) {
      const key = keyOf(relativePath);
      if (key === null || !key.startsWith(prefix)) continue;
      const stats = await statOrNull(join(this.root, relativePath));
      if (stats) yield { key, size: stats.size };
    }
  }

  /**
   * Writes, reads back and deletes a small file in the root. A missing root is reported, never
   * recreated: it usually means an unmounted volume, and writing to the disk beneath would hide that.
   */
  async check(): Promise<void> {
    const probe = join(this.root, `.probe-${randomUUID()}`);
    const content = Buffer.from(`ncps storage probe ${new Date().toISOString()}`);
    try {
      await writeFile(probe, content, { flag: 'wx' });
      if (!(await readFile(probe)).equals(content)) {
        throw new Error(`local storage ${this.root} returned different bytes than were written`);
      }
    } catch (error) {
      throw this.explain(error);
    } finally {
      await rm(probe, { force: true }).catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    // Nothing is held open between calls.
  }

  private async removeStaleTempFiles(): Promise<void> {
    const cutoff = Date.now() - STALE_TEMP_AGE_MS;
    for (const name of await readdir(this.tempDir)) {
      const file = join(this.tempDir, name);
      const stats = await statOrNull(file);
      if (stats && stats.mtimeMs < cutoff) await rm(file, { force: true });
    }
  }

  /** Turns an errno into a sentence an operator can act on. */
  private explain(error: unknown): Error {
    const reasons: Record<string, string> = {
      ENOENT: 'does not exist (removed, or its volume is not mounted?)',
      ENOTDIR: 'is not a directory (it, or a component of its path, is a file)',
      EACCES: 'is not writable by this process (permission denied)',
      EPERM: 'is not writable by this process (operation not permitted)',
      EROFS: 'is on a read-only filesystem',
      ENOSPC: 'is on a full filesystem (no space left on device)',
      EDQUOT: 'is over its disk quota',
    };
    const reason = reasons[errorCode(error) ?? ''] ?? `failed: ${errorMessage(error)}`;
    return new Error(`local storage directory ${this.root} ${reason}`, { cause: error });
  }
}

/** Yields the slash-separated paths, relative to the root, of the regular files below `dir`. */
async function* walkFiles(absoluteDir: string, relativeDir: string): AsyncGenerator<string> {
  let dir;
  try {
    dir = await opendir(absoluteDir);
  } catch (error) {
    if (errorCode(error) === 'ENOENT' || errorCode(error) === 'ENOTDIR') return;
    throw error;
  }
  // opendir streams entries, so a large shard never becomes one big array.
  for await (const entry of dir) {
    if (entry.name.startsWith('.')) continue;
    const relative = `${relativeDir}${entry.name}`;
    if (entry.isDirectory()) yield* walkFiles(join(absoluteDir, entry.name), `${relative}/`);
    else if (entry.isFile()) yield relative;
  }
}

function openForReading(path: string): Promise<number> {
  return new Promise((resolve, reject) => openDescriptor(path, 'r', (error, fd) => (error ? reject(error) : resolve(fd))));
}

async function statOrNull(path: string) {
  try {
    return await stat(path);
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return null;
    throw error;
  }
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
