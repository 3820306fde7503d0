import { ServedNarInfo } from 'src/database';

/** Whether two rows serve the same narinfo: every field of ServedNarInfo is compared, written out (a hit runs this). */
function sameContent(a: ServedNarInfo, b: ServedNarInfo): boolean {
  return (
    a.storePath === b.storePath &&
    a.url === b.url &&
    a.compression === b.compression &&
    a.fileHash === b.fileHash &&
    a.fileSize === b.fileSize &&
    a.narHash === b.narHash &&
    a.narSize === b.narSize &&
    a.refs === b.refs &&
    a.deriver === b.deriver &&
    a.system === b.system &&
    a.ca === b.ca &&
    a.sigs === b.sigs &&
    a.verified === b.verified
  );
}

interface Entry {
  row: ServedNarInfo;
  bytes: Buffer;
}

/**
 * The bytes served for narinfos (serialized, and signed when they may be), kept per row version so
 * that a hit neither serializes nor signs. The row is still looked up on every request (on SQLite the
 * lookup may answer with the rows it read while the database has not changed since, see
 * preparedQuery): an entry is used only while that row has the content it was made from, so a row
 * changed or deleted by another instance (a re-upload, an eviction and a new fetch) is never
 * answered from here. Bounded: the least recently used entry goes first.
 */
export class NarInfoTexts {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly capacity: number) {}

  /** The bytes for `row` (the current row of `hash`): remembered ones, or `render(row)`'s. */
  bytesFor(hash: string, row: ServedNarInfo, render: (row: ServedNarInfo) => Buffer): Buffer {
    const known = this.entries.get(hash);
    // A Map iterates in insertion order: re-inserting marks the entry as the most recently used.
    this.entries.delete(hash);
    if (known && sameContent(known.row, row)) {
      this.entries.set(hash, known);
      return known.bytes;
    }
    const bytes = render(row);
    // A copy, not the row itself: rows come from the lookup of every hit, and keeping some of them
    // here makes V8 see that allocation site's objects survive and allocate them all in the old
    // generation (pretenuring), where each hit's row, and the strings it holds, then stay as garbage
    // until a full collection: tens of MB a second at full speed.
    this.entries.set(hash, { row: { ...row }, bytes });
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value as string);
    return bytes;
  }

  /** Drops what is remembered for `hash` (its row was just replaced or deleted here). */
  forget(hash: string): void {
    this.entries.delete(hash);
  }

  get size(): number {
    return this.entries.size;
  }
}
