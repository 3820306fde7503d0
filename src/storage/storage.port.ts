import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';

/** An inclusive byte range, as in an HTTP Range header. */
export interface ByteRange {
  start: number;
  end: number;
}

export interface StoredObject {
  key: string;
  size: number;
}

/** An object opened for reading: its size, the range chosen in it (none: all of it), and those bytes. */
export interface OpenedObject {
  size: number;
  range?: ByteRange;
  stream: Readable;
}

export interface PutResult {
  size: number;
  /** false when an object with this key already existed; the existing one is kept. */
  created: boolean;
}

/**
 * Where NAR files (and other blobs) live. Keys are relative slash-separated paths such as
 * `nar/<hash>.nar.xz`; callers validate them, providers refuse anything that could escape their root.
 *
 * Contract, held by test/integration/storage/storage.conformance.ts for every provider:
 * - `put` streams `source` in bounded memory and is atomic: readers see the whole object or none;
 *   a failure midway (source error, backend error) leaves no object and no partial upload behind.
 *   Keys are content-addressed, so when the key already exists the existing object is kept.
 * - `read` returns null for a missing key; with a range it returns exactly those bytes.
 * - `openRead` is `head` then `read` in one step, for serving: `pickRange(size)` chooses the range once
 *   the size is known (undefined: the whole object). It costs less than the two calls: on local
 *   storage an open without a stat, on S3 one request instead of two when no range is asked.
 * - `delete` returns whether something was deleted; deleting a missing key is not an error.
 * - `check` is a cheap real probe used by /health; it throws an Error whose message explains the problem.
 */
/** Reads of a file handed to putFile and streamed. */
export const FILE_READ_BYTES = 1024 * 1024;

export abstract class StoragePort {
  abstract readonly kind: 'local' | 's3';
  abstract put(key: string, source: Readable): Promise<PutResult>;
  /**
   * `put` of a complete file that nobody writes any more (a verified download's temp file), and that
   * must never be written again: it may become the stored object itself. The file's name is left in
   * place for its owner to remove. By default it is streamed like any source; a provider that can take
   * the file as it is (local storage, on the same filesystem) does so.
   */
  putFile(key: string, path: string): Promise<PutResult> {
    return this.put(key, createReadStream(path, { highWaterMark: FILE_READ_BYTES }));
  }
  abstract head(key: string): Promise<StoredObject | null>;
  abstract read(key: string, range?: ByteRange): Promise<Readable | null>;
  abstract openRead(key: string, pickRange?: (size: number) => ByteRange | undefined): Promise<OpenedObject | null>;
  abstract delete(key: string): Promise<boolean>;
  abstract list(prefix?: string): AsyncIterable<StoredObject>;
  abstract check(): Promise<void>;
  /** Releases clients and handles (called on shutdown). */
  abstract close(): Promise<void>;
}

const SAFE_KEY = /^[A-Za-z0-9][A-Za-z0-9._-]*(\/[A-Za-z0-9][A-Za-z0-9._-]*)*$/;

/** Defence in depth: a key that reaches a provider must be a plain relative path. */
export function assertSafeKey(key: string): void {
  if (!SAFE_KEY.test(key) || key.split('/').some((part) => part === '..' || part === '.')) {
    throw new Error(`unsafe storage key: ${JSON.stringify(key)}`);
  }
}
