import { Logger } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { Registry } from 'prom-client';
import { NarFileEntity, NarInfoEntity } from 'src/database';
import { LockMetrics } from 'src/locking/lock.metrics';
import { LockTelemetry } from 'src/locking/lock.telemetry';
import { LocalLockProvider } from 'src/locking/providers/local.lock';
import { downloadNarKey } from 'src/locking';
import { nix32Encode } from 'src/nix';
import { ByteRange, OpenedObject, PutResult, StoragePort, StoredObject } from 'src/storage/storage.port';
import { FsckDeps, FsckRun, UPLOAD_GRACE_MS } from './fsck.run';
import { Finding, FsckOptions } from './fsck.findings';

const NOW = 1_700_000_000_000;
const OLD = NOW - UPLOAD_GRACE_MS - 1;

/** Storage in a Map: the port's contract, no disk. */
class MemoryStorage extends StoragePort {
  readonly kind = 'local';
  readonly objects = new Map<string, Buffer>();
  async put(key: string, source: Readable): Promise<PutResult> {
    const chunks: Buffer[] = [];
    for await (const chunk of source) chunks.push(chunk as Buffer);
    if (this.objects.has(key)) return { size: this.objects.get(key)!.length, created: false };
    this.objects.set(key, Buffer.concat(chunks));
    return { size: this.objects.get(key)!.length, created: true };
  }
  async head(key: string): Promise<StoredObject | null> {
    const bytes = this.objects.get(key);
    return bytes ? { key, size: bytes.length } : null;
  }
  async read(key: string): Promise<Readable | null> {
    const bytes = this.objects.get(key);
    return bytes ? Readable.from([bytes]) : null;
  }
  async openRead(key: string, pick?: (size: number) => ByteRange | undefined): Promise<OpenedObject | null> {
    const bytes = this.objects.get(key);
    if (!bytes) return null;
    const range = pick?.(bytes.length);
    return { size: bytes.length, range, stream: Readable.from([range ? bytes.subarray(range.start, range.end + 1) : bytes]) };
  }
  async delete(key: string): Promise<boolean> {
    return this.objects.delete(key);
  }
  async *list(prefix = ''): AsyncIterable<StoredObject> {
    for (const [key, bytes] of [...this.objects]) if (key.startsWith(prefix)) yield { key, size: bytes.length };
  }
  async check(): Promise<void> {}
  async close(): Promise<void> {}
}

/** The repository methods fsck uses, over arrays. */
class MemoryDatabase {
  narinfos: NarInfoEntity[] = [];
  files: NarFileEntity[] = [];
  private nextId = 1;

  readonly narInfos: FsckDeps['narInfos'] = {
    pageAfterId: async (after, limit) => this.narinfos.filter((n) => n.id > after).slice(0, limit),
    findOneByUrl: async (url) => this.narinfos.find((n) => n.url === url) ?? null,
    findByHash: async (hash) => this.narinfos.find((n) => n.hash === hash) ?? null,
    countByUrl: async (url) => this.narinfos.filter((n) => n.url === url).length,
    count: async () => this.narinfos.length,
    deleteByHash: async (hash) => {
      const before = this.narinfos.length;
      this.narinfos = this.narinfos.filter((n) => n.hash !== hash);
      return this.narinfos.length < before;
    },
  };

  readonly narFiles: FsckDeps['narFiles'] = {
    pageAfterId: async (after, limit) => this.files.filter((f) => f.id > after).slice(0, limit),
    findByKey: async (key) => this.files.find((f) => f.key === key) ?? null,
    countStored: async () => this.files.length,
    deleteByKey: async (key) => {
      const before = this.files.length;
      this.files = this.files.filter((f) => f.key !== key);
      return this.files.length < before;
    },
    insertIfAbsent: async (row) => {
      if (!this.files.some((f) => f.key === row.key)) this.files.push({ id: this.nextId++, ...row });
    },
  };

  addNarInfo(fields: Partial<NarInfoEntity> & Pick<NarInfoEntity, 'hash' | 'url'>): void {
    this.narinfos.push({
      id: this.nextId++,
      storePath: `/nix/store/${fields.hash}-x`,
      compression: 'xz',
      fileHash: null,
      fileSize: null,
      narHash: `sha256:${nix32Encode(Buffer.alloc(32, 7))}`,
      narSize: 1000,
      refs: '',
      deriver: null,
      system: null,
      ca: null,
      sigs: '',
      upstreamUrl: 'http://upstream',
      upstreamNarUrl: `${fields.url}?x`,
      verified: true,
      createdAt: OLD,
      lastAccessedAt: OLD,
      ...fields,
    });
  }

  addFile(fields: Pick<NarFileEntity, 'key' | 'fileSize'> & Partial<NarFileEntity>): void {
    this.files.push({ id: this.nextId++, compression: 'xz', fileHash: null, createdAt: OLD, lastAccessedAt: OLD, ...fields });
  }
}

const fileHashOf = (bytes: Buffer) => `sha256:${nix32Encode(createHash('sha256').update(bytes).digest())}`;
const narKey = (n: number) => `nar/${String(n).repeat(52).slice(0, 52)}.nar.xz`;

describe('FsckRun', () => {
  beforeAll(() => Logger.overrideLogger(false));

  let db: MemoryDatabase;
  let storage: MemoryStorage;
  let locks: LocalLockProvider;

  beforeEach(() => {
    db = new MemoryDatabase();
    storage = new MemoryStorage();
    locks = new LocalLockProvider(new LockTelemetry(new LockMetrics(new Registry())));
  });

  const sut = (options: Partial<FsckOptions> = {}) =>
    new FsckRun(
      { narInfos: db.narInfos, narFiles: db.narFiles, storage, locks, lockTtlMs: 5000, now: () => NOW },
      { repair: false, verifyContent: false, ...options },
    );

  /** A NAR fetched from upstream as serving stores it: narinfo, row and object agreeing. */
  function storeNar(n: number, bytes = Buffer.from(`nar ${n}`), narinfo: Partial<NarInfoEntity> = {}): string {
    const key = narKey(n);
    storage.objects.set(key, bytes);
    db.addFile({ key, fileSize: bytes.length, fileHash: fileHashOf(bytes) });
    db.addNarInfo({ hash: String(n).repeat(32).slice(0, 32), url: key, fileSize: bytes.length, fileHash: fileHashOf(bytes), ...narinfo });
    return key;
  }

  const kinds = (findings: Finding[]) => findings.map((f) => [f.kind, f.key, f.outcome]);

  it('finds nothing when the database and storage agree, and exits clean', async () => {
    storeNar(1);
    storeNar(2);

    const summary = await sut({ verifyContent: true }).run();

    expect(summary.clean).toBe(true);
    expect(summary.findings).toEqual([]);
    expect(summary.counts).toEqual({ narFiles: 2, narinfos: 2, objects: 2, bytesVerified: 10, unverifiable: 0 });
  });

  it('reports a row whose object is gone, and the repair deletes only the row (the narinfo refetches it)', async () => {
    const key = storeNar(1);
    storage.objects.delete(key);

    const found = await sut().run();
    expect(kinds(found.findings)).toEqual([['missing-object', key, 'found']]);
    expect(found.clean).toBe(false);
    expect(db.files).toHaveLength(1);

    const repaired = await sut({ repair: true }).run();
    expect(kinds(repaired.findings)).toEqual([['missing-object', key, 'repaired']]);
    expect(repaired.clean).toBe(true);
    expect(db.files).toEqual([]);
    expect(db.narinfos).toHaveLength(1);
    expect((await sut().run()).clean).toBe(true);
  });

  it('reports an object whose size disagrees with its row, and the repair deletes row and object', async () => {
    const key = storeNar(1);
    storage.objects.set(key, Buffer.from('truncated'));

    const found = await sut().run();
    expect(kinds(found.findings)).toEqual([['size-mismatch', key, 'found']]);
    expect(found.findings[0].detail).toBe('storage has 9 bytes, its nar_files row says 5');

    await sut({ repair: true }).run();
    expect(storage.objects.has(key)).toBe(false);
    expect(db.files).toEqual([]);
    expect((await sut().run()).clean).toBe(true);
  });

  it('finds a flipped byte only with verifyContent, and the repair deletes the NAR', async () => {
    const key = storeNar(1, Buffer.from('abcdef'));
    storage.objects.set(key, Buffer.from('abcdeF'));

    expect((await sut().run()).clean).toBe(true);
    const found = await sut({ verifyContent: true }).run();
    expect(kinds(found.findings)).toEqual([['corrupt-object', key, 'found']]);
    expect(found.findings[0].detail).toContain(`not ${fileHashOf(Buffer.from('abcdef'))}`);

    const repaired = await sut({ verifyContent: true, repair: true }).run();
    expect(repaired.clean).toBe(true);
    expect(storage.objects.has(key)).toBe(false);
    expect(db.files).toEqual([]);
    expect(db.narinfos).toHaveLength(1);
  });

  it('checks an uncompressed NAR against its NarHash, not a FileHash', async () => {
    const bytes = Buffer.from('plain nar');
    storeNar(1, bytes, {
      compression: 'none',
      narHash: fileHashOf(bytes),
      narSize: bytes.length,
      fileHash: fileHashOf(Buffer.from('other')),
    });
    Object.assign(db.files[0], { compression: 'none', fileHash: fileHashOf(Buffer.from('other')) });

    expect((await sut({ verifyContent: true }).run()).clean).toBe(true);
  });

  it('counts a compressed NAR without any FileHash as unverifiable, not as a problem', async () => {
    storeNar(1, Buffer.from('x'), { fileHash: null });
    db.files[0].fileHash = null;

    const summary = await sut({ verifyContent: true }).run();
    expect(summary.clean).toBe(true);
    expect(summary.counts.unverifiable).toBe(1);
  });

  it('deletes, in the same repair run, an uploaded narinfo whose corrupt NAR it removed (nothing could fetch it again)', async () => {
    const key = storeNar(1, Buffer.from('uploaded'), { upstreamUrl: null, upstreamNarUrl: null });
    storage.objects.set(key, Buffer.from('uploadeD'));

    const repaired = await sut({ verifyContent: true, repair: true }).run();

    expect(kinds(repaired.findings)).toEqual([
      ['corrupt-object', key, 'repaired'],
      ['unservable-narinfo', '11111111111111111111111111111111.narinfo', 'repaired'],
    ]);
    expect(db.narinfos).toEqual([]);
    expect((await sut({ verifyContent: true }).run()).clean).toBe(true);
  });

  it('reports NAR files and objects nothing refers to, sparing recent uploads', async () => {
    const unreferenced = narKey(3);
    storage.objects.set(unreferenced, Buffer.from('old'));
    db.addFile({ key: unreferenced, fileSize: 3 });
    const recent = narKey(4);
    storage.objects.set(recent, Buffer.from('new'));
    db.addFile({ key: recent, fileSize: 3, lastAccessedAt: NOW - 1000 });
    const orphan = narKey(5);
    storage.objects.set(orphan, Buffer.from('orphan'));
    storage.objects.set('other/not-a-nar', Buffer.from('x'));

    const found = await sut().run();
    expect(kinds(found.findings)).toEqual([
      ['unreferenced-nar', unreferenced, 'found'],
      ['orphan-object', orphan, 'found'],
    ]);

    await sut({ repair: true }).run();
    expect([...storage.objects.keys()].sort()).toEqual([recent, 'other/not-a-nar']);
    expect(db.files.map((f) => f.key)).toEqual([recent]);
  });

  it('records the row of an object a narinfo points at, so the LRU sees it', async () => {
    const key = storeNar(1);
    db.files = [];

    const found = await sut().run();
    expect(kinds(found.findings)).toEqual([['untracked-object', key, 'found']]);

    await sut({ repair: true }).run();
    expect(db.files).toEqual([expect.objectContaining({ key, fileSize: 5, fileHash: fileHashOf(Buffer.from('nar 1')) })]);
    expect((await sut().run()).clean).toBe(true);
  });

  it('leaves a NAR whose download lock is held alone, and says so', async () => {
    const key = storeNar(1);
    storage.objects.set(key, Buffer.from('truncated'));
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let locked!: () => void;
    const taken = new Promise<void>((resolve) => (locked = resolve));
    const holder = locks.withLock(downloadNarKey('1'.repeat(52)), 5000, async () => {
      locked();
      await held;
    });
    await taken;

    const summary = await sut({ repair: true }).run();
    release();
    await holder;

    expect(kinds(summary.findings)).toEqual([['size-mismatch', key, 'in-use']]);
    expect(summary.findings[0].action).toBe('being downloaded or uploaded; left alone');
    expect(summary.clean).toBe(false);
    expect(storage.objects.get(key)).toEqual(Buffer.from('truncated'));
    expect((await sut({ repair: true }).run()).clean).toBe(true);
  });

  it('stops with the error when storage fails', async () => {
    storeNar(1);
    storage.head = () => Promise.reject(new Error('bucket unreachable'));

    await expect(sut().run()).rejects.toThrow('bucket unreachable');
  });
});
