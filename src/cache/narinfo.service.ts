import { Inject, Injectable, Optional } from '@nestjs/common';
import { Readable } from 'node:stream';
import { NCPS_CONFIG } from 'src/config/config.module';
import { NcpsConfig } from 'src/config/config';
import { Clock } from 'src/common/clock';
import { BadRequestError, ConflictError, NotFoundError, PayloadTooLargeError } from 'src/common/errors';
import { NarInfoRepository, ServedNarInfo } from 'src/database';
import { NarInfo, NixFormatError, PublicKey, parseNarInfo, parsePublicKey, serializeNarInfo, storePathHash } from 'src/nix';
import { LockPort, downloadNarInfoKey } from 'src/locking';
import { narReadLockKey } from 'src/lru';
import { SigningKeyService } from 'src/signing';
import { StoragePort } from 'src/storage';
import { DISABLED_TRACING, Tracing } from 'src/telemetry';
import { CacheMetrics } from './cache.metrics';
import { AccessTracker } from './access-tracker';
import { NarInfoFetcher } from './narinfo-fetcher.service';
import { NegativeNarInfos } from './negative-narinfos';
import { parseNarName } from './nar-name';
import { narInfoFromRow, rowFromNarInfo } from './narinfo-record';
import { NarInfoTexts } from './narinfo-texts';
import { assertTrustedUpload, uploadOutcome } from './narinfo-upload';

/** Largest narinfo body we accept on PUT; real ones are a few KB even with many references. */
export const MAX_NARINFO_BYTES = 1024 * 1024;

/**
 * Narinfos whose served bytes are kept (see NarInfoTexts): about 1.5 KB each with their row, so some
 * 15 MB when full, for a hit that costs a lookup and a write instead of serializing and signing.
 */
const REMEMBERED_NARINFOS = 10_000;

/** Attributes of the lookup span (tracing on); one object, since a hit must not allocate for tracing that is off. */
const LOOKUP_SPAN = { 'db.operation.name': 'findServedByHash' } as const;

/** Decides how narinfo requests are answered: from the database, from upstream, or not at all. */
@Injectable()
export class NarInfoService {
  /** Keys whose signature makes an upload acceptable under --cache-require-trusted-signature. */
  private readonly uploadKeys: PublicKey[];
  private readonly texts = new NarInfoTexts(REMEMBERED_NARINFOS);

  constructor(
    @Inject(NCPS_CONFIG) private readonly config: NcpsConfig,
    private readonly narInfos: NarInfoRepository,
    private readonly signing: SigningKeyService,
    private readonly access: AccessTracker,
    private readonly fetcher: NarInfoFetcher,
    private readonly locks: LockPort,
    private readonly metrics: CacheMetrics,
    private readonly storage: StoragePort,
    private readonly negatives: NegativeNarInfos,
    private readonly clock: Clock,
    @Optional() private readonly tracing: Tracing = DISABLED_TRACING,
  ) {
    this.uploadKeys = config.cache.uploadTrustedKeys.map(parsePublicKey);
  }

  /**
   * The stored narinfo of `hash`, as the bytes to serve (signed by us when configured and its row is
   * verified), or null when it is not stored (then see fetchNarInfo).
   */
  storedNarInfo(hash: string): Promise<Buffer | null> {
    // A chain rather than an async function, and no span closure with tracing off: every hit runs
    // this, and what it allocates is collected with the young generation, tens of times a second.
    const found = this.tracing.enabled
      ? this.tracing.span('db.narinfo.lookup', () => this.narInfos.findServedByHash(hash), LOOKUP_SPAN)
      : this.narInfos.findServedByHash(hash);
    return found.then((row) => row && this.served(hash, row));
  }

  private served(hash: string, row: ServedNarInfo): Buffer {
    this.metrics.lookup('narinfo', 'hit');
    this.access.narInfoServed(hash);
    return this.texts.bytesFor(hash, row, this.render);
  }

  /** A narinfo that is not stored: fetched from an upstream and stored, as storedNarInfo would serve it. */
  async fetchNarInfo(hash: string): Promise<Buffer> {
    this.metrics.lookup('narinfo', 'miss');
    const row = await this.fetcher.fetch(hash);
    if (!row) throw new NotFoundError('narinfo not found');
    this.access.narInfoServed(hash);
    return this.texts.bytesFor(hash, row, this.render);
  }

  private readonly render = (row: ServedNarInfo): Buffer => {
    const info = narInfoFromRow(row);
    return Buffer.from(serializeNarInfo(this.config.cache.signNarinfo && row.verified ? this.signing.sign(info) : info));
  };

  /** `declaredLength` is the request's Content-Length, checked before any byte is read. */
  async putNarInfo(hash: string, body: Readable, declaredLength?: number): Promise<void> {
    if (declaredLength !== undefined && declaredLength > MAX_NARINFO_BYTES) {
      throw new PayloadTooLargeError(`narinfo larger than ${MAX_NARINFO_BYTES} bytes`);
    }
    const text = await readLimited(body, MAX_NARINFO_BYTES);
    let info: NarInfo;
    try {
      info = parseNarInfo(text);
    } catch (e) {
      if (e instanceof NixFormatError) throw new BadRequestError(`invalid narinfo: ${e.message}`);
      throw e;
    }
    if (storePathHash(info.storePath) !== hash) throw new BadRequestError('StorePath does not match the narinfo name');
    const [path, query] = info.url.split('?', 2);
    if (query !== undefined || !path.startsWith('nar/')) throw new BadRequestError('URL must be nar/<hash>.nar[.ext]');
    const nar = parseNarName(path.slice('nar/'.length));
    if (nar.compression !== info.compression) throw new BadRequestError('URL extension does not match Compression');
    assertTrustedUpload(info, this.config.cache.requireTrustedSignature, this.uploadKeys);
    const sigs = this.signing.othersOf(info.sigs);
    const ttl = this.config.lock.downloadTtlMs;
    // Under the narinfo's download lock, so an upstream fetch of the same path cannot slip in between
    // the check and the write; and under the NAR's shared lock: the LRU, holding it exclusively,
    // re-checks that no narinfo points at a NAR before deleting it, so the NAR found here stays.
    await this.locks.withLock(downloadNarInfoKey(hash), ttl, () =>
      this.locks.withReadLock(narReadLockKey(nar.key), ttl, async () => {
        // Nix uploads the NAR first; a narinfo pointing at nothing would be served, signed, and fail every client.
        if (!(await this.storage.head(nar.key))) {
          throw new ConflictError(`${nar.key} is not stored: upload the NAR before its narinfo`);
        }
        // A miss remembered before the upload is no longer true (and would outlive a later DELETE).
        await this.negatives.forget(hash);
        if (uploadOutcome(await this.narInfos.findByHash(hash), info) === 'unchanged') return;
        await this.narInfos.upsert(rowFromNarInfo(hash, { ...info, url: nar.key, sigs }, { now: this.clock.now() }));
        this.texts.forget(hash);
      }),
    );
  }

  async deleteNarInfo(hash: string): Promise<void> {
    const deleted = await this.narInfos.deleteByHash(hash);
    this.texts.forget(hash);
    if (!deleted) throw new NotFoundError('narinfo not found');
  }
}

async function readLimited(body: Readable, maxBytes: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  // Stop reading without destroying the request: the 413 is still sent, then the connection closed.
  for await (const chunk of body.iterator({ destroyOnReturn: false })) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) throw new PayloadTooLargeError(`narinfo larger than ${maxBytes} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
