import { Inject, Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { close, mkdirSync, openSync, writev } from 'node:fs';
import { FileHandle, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { NCPS_CONFIG } from 'src/config/config.module';
import { NcpsConfig } from 'src/config/config';

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
   * Creates the file (it must not exist) and returns its writer. Synchronous, so that the caller can
   * start listening to its source in the same turn of the event loop.
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
      mkdirSync(join(path, '..'), { recursive: true });
      const fd = openSync(path, 'wx');
      return {
        writeAt: async (chunks, position) => void (await writevAsync(fd, chunks, position)),
        close: () => closeAsync(fd),
      };
    },
    openForReading: () => open(path, 'r'),
    remove: () => rm(path, { force: true }),
  };
}
