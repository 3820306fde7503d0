import { NarFileEntity, NarFileRepository, NarInfoEntity, NarInfoRepository } from 'src/database';
import { LockPort } from 'src/locking';
import { nix32Encode, parseHash } from 'src/nix';
import { StoragePort } from 'src/storage';
import { sha256Of } from './content-hash';
import { FINDING_KINDS, Finding, FindingKind, FsckListener, FsckOptions, FsckPhase, FsckSummary } from './fsck.findings';
import { Guarded, whileUnused } from './fsck.locks';

/** Rows read per query. */
const BATCH_SIZE = 100;
/** Keys checked at once: per-request latency (S3, a remote database) would dominate one at a time. */
const CONCURRENCY = 4;
/** Findings kept for the JSON report; the counts per kind are always complete. */
const MAX_KEPT_FINDINGS = 1000;
/** Orphan objects held for their second look at the end of a run; more are found by the next run. */
const MAX_ORPHAN_CANDIDATES = 10_000;
/**
 * As the LRU: `nix copy` uploads a NAR before its narinfo, so a NAR file nothing points at yet, or an
 * uploaded narinfo whose NAR has not arrived, is left alone this long.
 */
export const UPLOAD_GRACE_MS = 10 * 60_000;
/** Only objects shaped like NAR keys are fsck's business; other prefixes belong to other features. */
const NAR_KEY = /^nar\/[0-9a-z]+\.nar(\.[a-z0-9]+)?$/;

export interface FsckDeps {
  narInfos: Pick<NarInfoRepository, 'pageAfterId' | 'findOneByUrl' | 'findByHash' | 'countByUrl' | 'count' | 'deleteByHash'>;
  narFiles: Pick<NarFileRepository, 'pageAfterId' | 'findByKey' | 'countStored' | 'deleteByKey' | 'insertIfAbsent'>;
  storage: StoragePort;
  locks: LockPort;
  /** TTL of the download lock fsck takes before it changes anything about a NAR. */
  lockTtlMs: number;
  now?: () => number;
}

/** The outcome of a repair: what was done, or null when the problem had gone once the locks were held. */
type Repair = () => Promise<Guarded<string | null>>;

/**
 * One fsck pass, in three sweeps that each hold a batch of rows at most:
 * 1. nar_files rows: is the object there, of the right size, referenced, and (--verify-content) intact?
 * 2. uploaded narinfos (no upstream to fetch their NAR from): is their NAR there?
 * 3. the storage listing: is every NAR object known to the database?
 * With `repair`, each finding is repaired as it is made, under the locks the LRU takes; the narinfo
 * sweep runs after the row sweep, so an uploaded narinfo whose NAR the first sweep deleted is
 * found (and deleted) in the same run.
 */
export class FsckRun {
  private readonly now: () => number;
  private readonly counts = { narFiles: 0, narinfos: 0, objects: 0, bytesVerified: 0, unverifiable: 0 };
  private readonly byKind = Object.fromEntries(FINDING_KINDS.map((kind) => [kind, { found: 0, repaired: 0 }])) as FsckSummary['byKind'];
  private readonly kept: Finding[] = [];
  private left = 0;
  private total = 0;

  constructor(
    private readonly deps: FsckDeps,
    private readonly options: FsckOptions,
    private readonly listener: FsckListener = {},
  ) {
    this.now = deps.now ?? Date.now;
  }

  async run(): Promise<FsckSummary> {
    await this.checkNarFiles();
    await this.checkUploadedNarInfos();
    await this.checkObjects();
    return {
      clean: this.left === 0,
      counts: { ...this.counts },
      byKind: this.byKind,
      left: this.left,
      findings: this.kept,
      findingsTruncated: this.total > this.kept.length,
    };
  }

  private async checkNarFiles(): Promise<void> {
    const total = await this.deps.narFiles.countStored();
    const rows = pages<NarFileEntity>((after, limit) => this.deps.narFiles.pageAfterId(after, limit));
    await this.sweep('nar-files', rows, total, async (row) => {
      this.counts.narFiles += 1;
      await this.checkNarFile(row);
    });
  }

  private async checkNarFile(row: NarFileEntity): Promise<void> {
    const { storage, narInfos } = this.deps;
    const { key } = row;
    const object = await storage.head(key);
    if (!object) {
      return this.found('missing-object', key, `its nar_files row says ${row.fileSize} bytes, but storage has no such object`, () =>
        this.deleteRowOfMissingObject(key),
      );
    }
    const narinfo = await narInfos.findOneByUrl(key);
    const expected: [string, number][] = [['its nar_files row', row.fileSize]];
    const narinfoSize = narinfo ? expectedFileSize(narinfo) : null;
    if (narinfoSize !== null) expected.push(['its narinfo', narinfoSize]);
    const wrong = expected.find(([, size]) => size !== object.size);
    if (wrong) {
      return this.found('size-mismatch', key, `storage has ${object.size} bytes, ${wrong[0]} says ${wrong[1]}`, () => this.deleteNar(key));
    }
    if (!narinfo) {
      if (row.lastAccessedAt >= this.now() - UPLOAD_GRACE_MS) return; // an upload whose narinfo may still come
      return this.found('unreferenced-nar', key, `no narinfo points at it (${object.size} bytes)`, () => this.deleteUnreferencedNar(key));
    }
    if (this.options.verifyContent)
      await this.verify(key, expectedFileHash(row.compression, row.fileHash, narinfo), () => this.deleteNar(key));
  }

  private async checkUploadedNarInfos(): Promise<void> {
    const total = await this.deps.narInfos.count();
    const narinfos = pages<NarInfoEntity>((after, limit) => this.deps.narInfos.pageAfterId(after, limit));
    const settled = this.now() - UPLOAD_GRACE_MS;
    await this.sweep('narinfos', narinfos, total, async (narinfo) => {
      this.counts.narinfos += 1;
      // A narinfo with an upstream and no NAR yet is ordinary: the NAR is fetched when first asked for.
      if (narinfo.upstreamNarUrl || narinfo.createdAt >= settled) return;
      if (await this.deps.storage.head(narinfo.url)) return;
      await this.found(
        'unservable-narinfo',
        `${narinfo.hash}.narinfo`,
        `it points at ${narinfo.url}, which is not in storage, and has no upstream to fetch it from`,
        () => this.deleteUnservableNarInfo(narinfo.hash, narinfo.url),
      );
    });
  }

  private async checkObjects(): Promise<void> {
    const { storage, narFiles, narInfos } = this.deps;
    const orphans: string[] = [];
    await this.sweep('objects', storage.list('nar/'), undefined, async (object) => {
      if (!NAR_KEY.test(object.key)) return;
      this.counts.objects += 1;
      if (await narFiles.findByKey(object.key)) return; // checked with its row
      const narinfo = await narInfos.findOneByUrl(object.key);
      if (!narinfo) {
        if (orphans.length < MAX_ORPHAN_CANDIDATES) orphans.push(object.key);
        return;
      }
      await this.checkUntracked(object.key, object.size, narinfo);
    });
    // A second look, later: an upload stores its object a moment before its row.
    for (const key of orphans) {
      if ((await narFiles.findByKey(key)) || (await narInfos.countByUrl(key)) > 0) continue;
      const object = await storage.head(key);
      if (!object) continue;
      await this.found('orphan-object', key, `neither a nar_files row nor a narinfo refers to it (${object.size} bytes)`, () =>
        this.deleteOrphanObject(key),
      );
    }
  }

  /** An object a narinfo points at, without its row: recorded when it is what the narinfo describes. */
  private async checkUntracked(key: string, size: number, narinfo: NarInfoEntity): Promise<void> {
    const expected = expectedFileSize(narinfo);
    if (expected !== null && expected !== size) {
      return this.found('size-mismatch', key, `storage has ${size} bytes, its narinfo says ${expected} (and it has no nar_files row)`, () =>
        this.deleteNar(key),
      );
    }
    const fileHash = expectedFileHash(narinfo.compression, null, narinfo);
    if (this.options.verifyContent && !(await this.verify(key, fileHash, () => this.deleteNar(key)))) return;
    await this.found(
      'untracked-object',
      key,
      `a narinfo points at it (${size} bytes) but it has no nar_files row, so the LRU never sees it`,
      () => this.recordUntracked(key, narinfo, fileHash),
    );
  }

  /**
   * Streams the object through sha256 and compares with `fileHash`; a mismatch is a finding. Returns
   * whether the bytes are good (true when they cannot be checked).
   */
  private async verify(key: string, fileHash: string | null, repair: Repair): Promise<boolean> {
    const expected = parseOrNull(fileHash);
    if (!expected) {
      this.counts.unverifiable += 1;
      return true;
    }
    const stream = await this.deps.storage.read(key);
    if (!stream) return true; // deleted meanwhile (LRU): nothing left to check
    const { digest, size } = await sha256Of(stream);
    this.counts.bytesVerified += size;
    if (digest.equals(expected)) return true;
    await this.found('corrupt-object', key, `its bytes hash to sha256:${nix32Encode(digest)}, not ${fileHash}`, repair);
    return false;
  }

  private async found(kind: FindingKind, key: string, detail: string, repair: Repair): Promise<void> {
    const finding: Finding = { kind, key, detail, outcome: 'found' };
    this.byKind[kind].found += 1;
    if (this.options.repair) {
      const result = await repair();
      if (!result.ran) {
        finding.outcome = 'in-use';
        finding.action = result.why;
      } else if (result.value === null) {
        finding.outcome = 'gone';
        finding.action = 'no longer the case once locked; nothing done';
      } else {
        finding.outcome = 'repaired';
        finding.action = result.value;
        this.byKind[kind].repaired += 1;
      }
    }
    if (finding.outcome === 'found' || finding.outcome === 'in-use') this.left += 1;
    this.total += 1;
    if (this.kept.length < MAX_KEPT_FINDINGS) this.kept.push(finding);
    this.listener.finding?.(finding);
  }

  // Repairs. Each runs under whileUnused (the LRU's locks) and re-checks what it acts on there.

  private guarded(key: string, fn: () => Promise<string | null>): Promise<Guarded<string | null>> {
    return whileUnused(this.deps.locks, key, this.deps.lockTtlMs, fn);
  }

  private deleteRowOfMissingObject(key: string): Promise<Guarded<string | null>> {
    return this.guarded(key, async () => {
      if (await this.deps.storage.head(key)) return null; // stored again meanwhile
      return (await this.deps.narFiles.deleteByKey(key)) ? 'deleted its nar_files row; the next request fetches it again' : null;
    });
  }

  /** The object cannot be trusted: row first, then object, as the LRU deletes (upstream NARs are fetched again). */
  private deleteNar(key: string): Promise<Guarded<string | null>> {
    return this.guarded(key, async () => {
      const hadRow = await this.deps.narFiles.deleteByKey(key);
      const hadObject = await this.deps.storage.delete(key);
      if (!hadRow && !hadObject) return null;
      return `deleted ${hadRow ? 'its nar_files row and ' : ''}the object; the next request fetches it again`;
    });
  }

  private deleteUnreferencedNar(key: string): Promise<Guarded<string | null>> {
    return this.guarded(key, async () => {
      if ((await this.deps.narInfos.countByUrl(key)) > 0) return null;
      if (!(await this.deps.narFiles.deleteByKey(key))) return null;
      await this.deps.storage.delete(key);
      return 'deleted its nar_files row and the object';
    });
  }

  private deleteOrphanObject(key: string): Promise<Guarded<string | null>> {
    return this.guarded(key, async () => {
      if ((await this.deps.narFiles.findByKey(key)) || (await this.deps.narInfos.countByUrl(key)) > 0) return null;
      return (await this.deps.storage.delete(key)) ? 'deleted the object' : null;
    });
  }

  private recordUntracked(key: string, narinfo: NarInfoEntity, fileHash: string | null): Promise<Guarded<string | null>> {
    return this.guarded(key, async () => {
      if (await this.deps.narFiles.findByKey(key)) return null;
      const object = await this.deps.storage.head(key);
      if (!object) return null;
      const now = this.now();
      await this.deps.narFiles.insertIfAbsent({
        key,
        compression: narinfo.compression,
        fileSize: object.size,
        fileHash,
        createdAt: now,
        lastAccessedAt: now,
      });
      return 'recorded its nar_files row';
    });
  }

  /** Deleted: a client would get the narinfo and then fail on its NAR. A fresh narinfo miss is better. */
  private deleteUnservableNarInfo(hash: string, url: string): Promise<Guarded<string | null>> {
    return this.guarded(url, async () => {
      if (await this.deps.storage.head(url)) return null;
      const current = await this.deps.narInfos.findByHash(hash);
      if (!current || current.upstreamNarUrl || current.url !== url) return null;
      return (await this.deps.narInfos.deleteByHash(hash)) ? 'deleted the narinfo (the path must be uploaded again)' : null;
    });
  }

  /** Runs `check` over `items`, CONCURRENCY at a time, reporting progress; the first error stops it. */
  private async sweep<T>(
    phase: FsckPhase,
    items: AsyncIterable<T>,
    total: number | undefined,
    check: (item: T) => Promise<void>,
  ): Promise<void> {
    const iterator = items[Symbol.asyncIterator]();
    let done = 0;
    let failed = false;
    this.listener.progress?.({ phase, done, total });
    const worker = async () => {
      // Workers share one iterator: concurrent next() calls on an async generator queue up.
      for (let next = await iterator.next(); !next.done && !failed; next = await iterator.next()) {
        try {
          await check(next.value);
        } catch (e) {
          failed = true;
          throw e;
        }
        done += 1;
        this.listener.progress?.({ phase, done, total });
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  }
}

/** Rows in id order, a batch at a time (rows deleted meanwhile are simply not seen). */
async function* pages<T extends { id: number }>(page: (afterId: number, limit: number) => Promise<T[]>): AsyncGenerator<T> {
  for (let after = 0; ;) {
    const rows = await page(after, BATCH_SIZE);
    yield* rows;
    if (rows.length < BATCH_SIZE) return;
    after = rows[rows.length - 1].id;
  }
}

/** The size of the NAR file a narinfo describes, when it says: the NAR itself when uncompressed. */
function expectedFileSize(narinfo: Pick<NarInfoEntity, 'compression' | 'fileSize' | 'narSize'>): number | null {
  return narinfo.compression === 'none' ? narinfo.narSize : narinfo.fileSize;
}

/**
 * The hash the stored bytes must have. An uncompressed NAR is stored under its NarHash and was checked
 * against it (a FileHash there is not covered by the signature); a compressed one against its FileHash.
 */
function expectedFileHash(
  compression: string,
  rowFileHash: string | null,
  narinfo: Pick<NarInfoEntity, 'fileHash' | 'narHash'> | null,
): string | null {
  if (compression === 'none' && narinfo) return narinfo.narHash;
  return rowFileHash ?? narinfo?.fileHash ?? null;
}

function parseOrNull(hash: string | null): Buffer | null {
  if (!hash) return null;
  try {
    return parseHash(hash).digest;
  } catch {
    return null;
  }
}
