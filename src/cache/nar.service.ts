import { Inject, Injectable } from '@nestjs/common';
import { Readable } from 'node:stream';
import { NCPS_CONFIG } from 'src/config/config.module';
import { NcpsConfig } from 'src/config/config';
import { Clock } from 'src/common/clock';
import { BadRequestError, NotFoundError, PayloadTooLargeError, UpstreamIntegrityError } from 'src/common/errors';
import { NarFileRepository, NarInfoRepository } from 'src/database';
import { nix32Encode, parseHash } from 'src/nix';
import { LockPort, downloadNarKey } from 'src/locking';
import { openUnderReadLock } from 'src/lru';
import { ServedSource } from 'src/metrics';
import { ByteRange, StoragePort } from 'src/storage/storage.port';
import { CacheMetrics } from './cache.metrics';
import { AccessTracker } from './access-tracker';
import { Download, IntegrityError } from './download/download';
import { TempFiles } from './download/temp-files';
import { Hashing } from './download/hashing';
import { DownloadRegistry } from './download/download-registry';
import { NarDownloader } from './download/nar-downloader.service';
import { tailDownload } from './download/tail-reader';
import { PeerBody, PeerStreamService } from './download/peer-stream.service';
import { parseNarName } from './nar-name';
import { guardUpload } from './upload-guard';

export interface NarBody {
  size: number | undefined;
  range?: ByteRange;
  stream: Readable;
}

/** A NAR for a client, and whether its bytes come from storage or from upstream (see markServedSource). */
export interface ServedNar extends NarBody {
  source: ServedSource;
}

/**
 * Decides how NAR requests are answered: from storage, from a download in progress here or on
 * another instance, from a new upstream download, or not at all.
 */
@Injectable()
export class NarService {
  constructor(
    @Inject(NCPS_CONFIG) private readonly config: NcpsConfig,
    private readonly narInfos: NarInfoRepository,
    private readonly narFiles: NarFileRepository,
    private readonly storage: StoragePort,
    private readonly access: AccessTracker,
    private readonly downloader: NarDownloader,
    private readonly downloads: DownloadRegistry,
    private readonly peers: PeerStreamService,
    private readonly locks: LockPort,
    private readonly metrics: CacheMetrics,
    private readonly tempFiles: TempFiles,
    private readonly hashing: Hashing,
    private readonly clock: Clock,
  ) {}

  /** Size of a NAR (stored, or known from its narinfo), without opening or fetching it. */
  async headNar(name: string): Promise<number | undefined> {
    const { key } = parseNarName(name);
    const stored = await this.storage.head(key);
    if (stored) return stored.size;
    const running = this.downloads.get(key);
    if (running && running.state !== 'failed') return running.expectedSize;
    // A narinfo just answered may still be on its way to the database: the downloader knows its row.
    const narinfo = this.downloader.expectedRow(key) ?? (await this.narInfos.findOneByUrl(key));
    if (!narinfo?.upstreamNarUrl) throw new NotFoundError('NAR not found');
    return narinfo.fileSize ?? undefined;
  }

  /**
   * A NAR from storage, or — on a miss — from the download in progress here, started if needed.
   * `size` is undefined when neither storage, narinfo nor upstream tells the length in advance.
   */
  async getNar(name: string, range?: (size: number) => ByteRange | undefined): Promise<ServedNar> {
    const { key } = parseNarName(name);
    // Fetching here means it was not stored when that began: join it without a storage lookup (nor its read lock).
    const running = this.downloads.get(key);
    const joinable = running?.fetching ? running : undefined;
    const fromStorage = joinable ? null : await this.readStored(key, range);
    this.metrics.lookup('nar', fromStorage ? 'hit' : 'miss');
    if (fromStorage) return { ...fromStorage, source: 'cache' };
    const distributed = this.config.lock.backend !== 'local';
    let download = joinable ?? this.downloads.get(key);
    if (!download) {
      const narinfo = this.downloader.expectedRow(key) ?? (await this.narInfos.findOneByUrl(key));
      if (!narinfo?.upstreamNarUrl) {
        // An uploaded NAR recorded as stored but gone from storage: nothing can fetch it again.
        if (narinfo && (await this.narFiles.findByKey(key))) this.metrics.storedObjectMissing();
        throw new NotFoundError('NAR not found');
      }
      const fromPeer = distributed ? await this.peers.open(key) : null;
      if (fromPeer) return this.peerBody(key, fromPeer);
      download = this.downloader.downloadFor(narinfo).download;
    } else {
      this.metrics.download('joined');
    }
    // While another instance holds the download lock, stream from it rather than wait for it.
    const fromPeer = distributed ? await this.peers.waitForPeer(key, download.ready) : null;
    if (fromPeer) return this.peerBody(key, fromPeer);
    await download.ready;
    // Done: committed, and its temp file may be gone already.
    if (download.foundInStorage || download.state === 'done') {
      const stored = await this.readStored(key, range);
      if (stored) return { ...stored, source: 'cache' };
      throw new NotFoundError('NAR not found');
    }
    if (download.state === 'failed') throw new UpstreamIntegrityError('the upstream download of this NAR failed');
    this.access.narFileServed(key);
    const size = download.expectedSize;
    const wanted = size === undefined ? undefined : range?.(size);
    const stream = tailDownload(download, wanted?.start ?? 0, wanted?.end ?? Infinity);
    return { size, range: wanted, stream, source: 'upstream' };
  }

  /** A peer's stream is sent whole: a Range is ignored there, which RFC 9110 allows. */
  private peerBody(key: string, peer: PeerBody): ServedNar {
    this.access.narFileServed(key);
    return { size: peer.size, stream: peer.stream, source: 'upstream' };
  }

  /** For another instance: the bytes of a download running here, or of the stored object. */
  async localNar(name: string): Promise<NarBody> {
    const { key } = parseNarName(name);
    const running = this.downloads.get(key);
    if (running && running.state !== 'failed') {
      await running.ready;
      if (!running.foundInStorage && !running.error) {
        return { size: running.expectedSize, stream: tailDownload(running) };
      }
    }
    const stored = await this.readStored(key);
    if (!stored) throw new NotFoundError('no such download here');
    return stored;
  }

  /** Read under the NAR's read lock, held until the stream ends: the LRU never deletes a NAR being read. */
  private readStored(key: string, range?: (size: number) => ByteRange | undefined): Promise<NarBody | null> {
    return openUnderReadLock(this.locks, key, this.config.lock.downloadTtlMs, async () => {
      const stored = await this.storage.openRead(key, range);
      if (stored) this.access.narFileServed(key);
      return stored;
    });
  }

  /**
   * Stores an uploaded NAR. Its name carries the hash of its bytes (Nix names uploads by FileHash),
   * so the body goes through a Download like an upstream fetch: spooled, checked, then made visible.
   * `declaredLength` (Content-Length) over --cache-max-nar-size is refused before a byte is read; a
   * body growing past it, or silent for --server-request-idle-timeout, is refused as it happens
   * (413, 408) and its temp file removed.
   */
  async putNar(name: string, body: Readable, declaredLength?: number): Promise<void> {
    const nar = parseNarName(name);
    const digest = parseHash(`sha256:${nar.hash}`).digest;
    const maxBytes = this.config.cache.maxNarSizeBytes;
    if (declaredLength !== undefined && declaredLength > maxBytes) throw new PayloadTooLargeError(`NAR larger than ${maxBytes} bytes`);
    const upload = new Download(nar.key, this.tempFiles.next(), { sha256: digest }, this.hashing);
    try {
      await upload.run(guardUpload(body, { maxBytes, idleMs: this.config.server.requestIdleTimeoutMs }, this.clock), (path, size) =>
        // Object and row under the NAR's download lock, as a download commits: `ncps fsck --repair` takes
        // it before deleting, so it never takes a just-stored object whose row is on its way for an orphan.
        this.locks.withLock(downloadNarKey(nar.hash), this.config.lock.downloadTtlMs, async () => {
          await this.storage.putFile(nar.key, path);
          const now = this.clock.now();
          await this.narFiles.insertIfAbsent({
            key: nar.key,
            compression: nar.compression,
            fileSize: size,
            fileHash: `sha256:${nix32Encode(digest)}`,
            createdAt: now,
            lastAccessedAt: now,
          });
        }),
      );
    } catch (e) {
      if (e instanceof IntegrityError) throw new BadRequestError('NAR body does not match the hash in its name');
      throw e;
    }
  }

  async deleteNar(name: string): Promise<void> {
    const { key } = parseNarName(name);
    // Row first: a crash in between leaves an unreferenced object, never a row pointing at nothing.
    const hadRow = await this.narFiles.deleteByKey(key);
    const hadObject = await this.storage.delete(key);
    if (!hadRow && !hadObject) throw new NotFoundError('NAR not found');
  }
}
