import { Inject, Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { close, open as openFd, writev } from 'node:fs';
import { FileHandle, mkdir, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { NCPS_CONFIG } from 'src/config/config.module';
import { NcpsConfig } from 'src/config/config';

const openAsync = promisify(openFd);
const writevAsync = promisify(writev);
const closeAsync = promisify(close);

/** A temp file being written: each batch at its offset, then closed. */
export interface TempWriter {
  writeAt(chunks: Buffer[], position: number): Promise<void>;
  close(): Promise<void>;
}

/** One temp file of a download or an upload, by name; it exists from `create` until `remove`. */
export interface TempFile {
  readonly path: string;
  /**
   * Starts creating the file (it must not exist) and returns its writer at once, so that the caller
   * can start listening to its source in the same turn of the event loop, and hand the first bytes
   * to its readers without waiting for the file system. Writes wait for the file; a failure to
   * create it is the first write's (and close's) error.
   */
  create(): TempWriter;
  /** Opens it for a reader tailing it (see tail-reader). */
  openForReading(): Promise<FileHandle>;
  remove(): Promise<void>;
}

/**
 * Where downloads and uploads spool their bytes (`--cache-temp-path`): the file I/O of Download and
 * of its readers, so that what decides about a download can be tested without the disk.
 */
@Injectable()
export class TempFiles {
  private readonly dir: string;

  constructor(@Inject(NCPS_CONFIG) config: Pick<NcpsConfig, 'cache'>) {
    this.dir = config.cache.tempPath;
  }

  /** A new temp file's name in the directory (nothing is created yet). */
  next(): TempFile {
    return tempFileIn(this.dir);
  }
}

/** A temp file with a new name in `dir`, on disk. */
export function tempFileIn(dir: string): TempFile {
  const path = join(dir, `ncps-dl-${randomUUID()}.tmp`);
  return {
    path,
    create() {
      const created = createExclusive(path);
      // Seen by the first write or the close; not an unhandled rejection meanwhile.
      created.catch(() => undefined);
      return {
        writeAt: async (chunks, position) => void (await writevAsync(await created, chunks, position)),
        close: async () => closeAsync(await created),
      };
    },
    openForReading: () => open(path, 'r'),
    remove: () => rm(path, { force: true }),
  };
}

/** Opens a new file at `path` for writing; its directory is created only when it is missing (removed since the start, say). */
async function createExclusive(path: string): Promise<number> {
  try {
    return await openAsync(path, 'wx');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    await mkdir(join(path, '..'), { recursive: true });
    return openAsync(path, 'wx');
  }
}
