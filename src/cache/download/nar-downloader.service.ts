import { Readable } from 'node:stream';
import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import { NCPS_CONFIG } from 'src/config/config.module';
import { NcpsConfig } from 'src/config/config';
import { Clock } from 'src/common/clock';
import { InstanceIdentity } from 'src/cluster';
import { NarDownloadRepository, NarFileEntity, NarFileRepository, NewNarInfo } from 'src/database';
import { LockPort, downloadNarKey, narKeyHash } from 'src/locking';
import { parseHash } from 'src/nix';
import { StoragePort } from 'src/storage';
import { DISABLED_TRACING, Tracing } from 'src/telemetry';
import { UpstreamService } from 'src/upstream';
import { CacheMetrics } from '../cache.metrics';
import { Download, Expectations } from './download';
import { DownloadRegistry } from './download-registry';
import { DownloadSlot, DownloadSlots } from './download-slots';
import { Hashing } from './hashing';
import { TempFiles } from './temp-files';

/** How long an announcement outlives a silent owner (it is refreshed at a third of this). */
const ANNOUNCEMENT_TTL_MS = 15_000;

/**
 * Fetches NARs from upstream: one download per NAR in this process (joined by every concurrent
 * request), under the cluster-wide `download:nar:<hash>` lock, verified before it is stored.
 */
@Injectable()
export class NarDownloader {
  private readonly logger = new Logger(NarDownloader.name);
  /** Narinfo rows already answered but still being inserted, by NAR URL (see expectRow). */
  private readonly expected = new Map<string, NewNarInfo>();

  constructor(
    @Inject(NCPS_CONFIG) private readonly config: NcpsConfig,
    private readonly registry: DownloadRegistry,
    private readonly locks: LockPort,
    private readonly storage: StoragePort,
    private readonly narFiles: NarFileRepository,
    private readonly upstream: UpstreamService,
    private readonly announcements: NarDownloadRepository,
    private readonly metrics: CacheMetrics,
    private readonly slots: DownloadSlots,
    private readonly identity: InstanceIdentity,
    private readonly tempFiles: TempFiles,
    private readonly hashing: Hashing,
    private readonly clock: Clock,
    @Optional() private readonly tracing: Tracing = DISABLED_TRACING,
  ) {}

  /**
   * Makes `row` known to expectedRow until the returned function is called: a narinfo is answered
   * before its row is in the database, and its client may ask for the NAR before it is.
   */
  expectRow(row: NewNarInfo): () => void {
    this.expected.set(row.url, row);
    return () => {
      if (this.expected.get(row.url) === row) this.expected.delete(row.url);
    };
  }

  /** A narinfo row of the NAR stored under `url` whose insert is under way, if any. */
  expectedRow(url: string): NewNarInfo | undefined {
    return this.expected.get(url);
  }

  /**
   * The running download of `narinfo`'s NAR, started if none runs here yet. A new download waits for
   * a client slot (see DownloadSlots) unless the caller already holds one (`slot`, a prefetch's),
   * which it then uses; a slot given for a download that was already running is released at once.
   * `fresh`: the narinfo was fetched from its upstream just now, so its NAR is almost surely not
   * stored, and the upstream is asked for it beside the storage check instead of after it (see run).
   */
  downloadFor(narinfo: NewNarInfo, slot?: DownloadSlot, { fresh = false } = {}): { download: Download; joined: boolean } {
    const found = this.registry.getOrStart(
      narinfo.url,
      () => new Download(narinfo.url, this.tempFiles.next(), expectationsOf(narinfo, this.config.cache.maxNarSizeBytes), this.hashing),
      (download) => this.run(download, narinfo, slot, fresh),
    );
    if (found.joined) {
      slot?.release();
      this.metrics.download('joined');
    }
    return found;
  }

  /**
   * The download itself, under the NAR's lock. Storage is checked first: another instance may have
   * stored the NAR while this one waited. For a `fresh` narinfo the upstream request goes out at the
   * same time, so the first byte does not wait for the storage round trip (a stat through the
   * thread pool, or a request to S3), and the download counts as fetching at once, so that clients
   * join it rather than ask storage too; should storage have the NAR after all, the response is
   * dropped unread and the clients read the stored NAR. Any other download asks the upstream only
   * once storage said no: a client of a NAR that is stored, or being stored by another instance,
   * costs the upstream nothing.
   */
  private async run(download: Download, narinfo: NewNarInfo, given: DownloadSlot | undefined, fresh: boolean): Promise<void> {
    const hash = narKeyHash(narinfo.url);
    const slot = given ?? (await this.slots.acquire('client'));
    try {
      const ttl = this.config.lock.downloadTtlMs;
      await this.tracing.span(
        'nar.download',
        () =>
          this.locks.withLock(downloadNarKey(hash), ttl, async () => {
            const early = fresh ? this.fetchNar(narinfo) : undefined;
            early?.catch(() => undefined);
            // Presumed absent: a client asking meanwhile joins the download instead of asking storage
            // itself (it still reads storage should the check below find the NAR after all).
            if (early) download.notInStorage();
            try {
              if (await this.storage.head(narinfo.url)) {
                void dropResponse(early);
                return download.completeFromStorage();
              }
              download.notInStorage();
              this.metrics.download('started');
              // A row without its object: storage lost it (deleted by hand, restored apart). Fetched again as a
              // miss, and counted beside the fetch rather than before it (a client waits for the first byte).
              void this.narFiles.findByKey(narinfo.url).then(
                (row) => row && this.metrics.storedObjectMissing(),
                () => undefined,
              );
              upstreamOf(narinfo); // an upload's NAR: fails here, before anything is announced
              const started = this.clock.now();
              await this.announced(narinfo.url, async () => {
                const { body, contentLength } = await (early ?? this.fetchNar(narinfo));
                download.expectedSize ??= contentLength;
                await download.run(
                  body,
                  (path, size) => {
                    const traced = { 'ncps.nar.key': narinfo.url, 'ncps.nar.bytes': size };
                    return this.tracing.span('storage.commit', () => this.commit(narinfo, path, size), traced);
                  },
                  (bytes) => this.metrics.fetched(bytes),
                );
              });
              this.logger.log({ hash, bytes: download.written, duration_ms: this.clock.now() - started }, 'NAR downloaded');
            } catch (e) {
              // A response asked for early and never taken (storage or the announcement failed) is dropped.
              void dropResponse(early);
              throw e;
            }
          }),
        { 'ncps.nar.key': narinfo.url },
      );
    } catch (e) {
      download.fail(e instanceof Error ? e : new Error(String(e)));
      this.logger.warn({ hash, err: (e as Error).message }, 'NAR download failed; nothing was stored');
      throw e;
    } finally {
      slot.release();
    }
  }

  /** The upstream's response for the NAR of `narinfo` (its body not read yet). */
  private async fetchNar(narinfo: NewNarInfo): Promise<{ body: Readable; contentLength?: number }> {
    const { upstreamUrl, upstreamNarUrl } = upstreamOf(narinfo);
    return this.upstream.fetchNar(upstreamNarUrl, { url: upstreamUrl });
  }

  /**
   * Runs `fn` while the shared database says this instance is downloading `key`, so clients of other
   * instances stream from here instead of waiting. Single-instance setups (local locks) skip it, and
   * so does a process that does not serve (no advertise URL: a CLI command).
   */
  private async announced<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const owner = this.identity.owner;
    if (this.config.lock.backend === 'local' || owner === undefined) return fn();
    const started = this.clock.now();
    const announce = () => this.announcements.announce(key, owner, started, this.clock.now() + ANNOUNCEMENT_TTL_MS);
    await announce();
    const refresh = this.clock.setInterval(() => void announce().catch(() => undefined), ANNOUNCEMENT_TTL_MS / 3);
    try {
      return await fn();
    } finally {
      refresh.cancel();
      await this.announcements.withdraw(key, owner).catch(() => undefined);
    }
  }

  /**
   * Runs after the bytes were verified and released to readers. The object and its row appear
   * together or not at all: an object this commit created is removed again if its row cannot be written.
   */
  private async commit(narinfo: NewNarInfo, path: string, size: number): Promise<void> {
    const started = this.clock.now();
    const { created } = await this.storage.putFile(narinfo.url, path);
    const now = this.clock.now();
    const row: Omit<NarFileEntity, 'id'> = {
      key: narinfo.url,
      compression: narinfo.compression,
      fileSize: size,
      fileHash: narinfo.fileHash,
      createdAt: now,
      lastAccessedAt: now,
    };
    try {
      await this.narFiles.insertIfAbsent(row);
    } catch (e) {
      if (created) await this.storage.delete(narinfo.url).catch(() => undefined);
      throw e;
    }
    this.logger.debug({ key: narinfo.url, bytes: size, duration_ms: this.clock.now() - started }, 'NAR committed to storage');
  }
}

/** Where the NAR of `narinfo` comes from; an uploaded one has no upstream. */
function upstreamOf(narinfo: NewNarInfo): { upstreamUrl: string; upstreamNarUrl: string } {
  const { upstreamUrl, upstreamNarUrl } = narinfo;
  if (!upstreamUrl || !upstreamNarUrl) throw new Error('NAR has no known upstream');
  return { upstreamUrl, upstreamNarUrl };
}

/** Drops a response asked for too early (the NAR turned out to be stored): its body is never read. */
async function dropResponse(response: Promise<{ body: Readable }> | undefined): Promise<void> {
  const answered = await response?.catch(() => undefined);
  answered?.body.destroy();
}

/**
 * What the bytes must match (see narKeyFor for why the key can be trusted): an uncompressed file is
 * the NAR, so NarSize/NarHash; a compressed one FileSize/FileHash when given, and without a FileHash
 * it must decompress to NarSize bytes of NarHash (checked in the same pass). Without any known size
 * the transfer is cut at `maxSize`.
 */
export function expectationsOf(narinfo: NewNarInfo, maxSize: number): Expectations {
  const narHash = parseHash(narinfo.narHash).digest;
  if (narinfo.compression === 'none') return { size: narinfo.narSize, maxSize, sha256: narHash };
  const size = narinfo.fileSize ?? undefined;
  if (narinfo.fileHash) return { size, maxSize, sha256: parseHash(narinfo.fileHash).digest };
  return { size, maxSize, nar: { compression: narinfo.compression, narHash, narSize: narinfo.narSize } };
}
