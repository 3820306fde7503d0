import { Inject, Injectable, Logger } from '@nestjs/common';
import { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Clock } from 'src/common/clock';
import { BadRequestError, NotFoundError, PayloadTooLargeError, UpstreamIntegrityError } from 'src/common/errors';
import { NcpsConfig } from 'src/config/config';
import { NCPS_CONFIG } from 'src/config/config.module';
import { ArtifactRepository } from 'src/database';
import { LockPort } from 'src/locking';
import { StoragePort } from 'src/storage';
import { UpstreamService } from 'src/upstream';
import { AccessTracker } from '../access-tracker';
import { guardUpload } from '../upload-guard';
import { ArtifactName } from './artifact-name';

/**
 * Content-Encodings kept as they are, in storage and in answers: those Nix decodes (it decodes any
 * Content-Encoding its libarchive recognises, and br). `x-gzip` is stored as `gzip`.
 */
const ENCODINGS: ReadonlySet<string> = new Set(['br', 'gzip', 'x-gzip', 'xz', 'bzip2', 'zstd']);
/** Listings, logs and pointers are small; a build log is the largest of them. Also bounded by --cache-max-nar-size. */
const MAX_ARTIFACT_BYTES = 256 * 1024 * 1024;

/** A stored artifact opened for an answer. */
export interface ArtifactBody {
  size: number;
  contentEncoding: string | null;
  stream: Readable;
}

/**
 * Listings, build logs, realisations, build traces and debuginfo pointers (see artifact-name.ts):
 * served from storage; on a miss fetched from the upstreams (best priority first), stored, then
 * served; accepted by PUT under the same rules as narinfos and NARs.
 *
 * They are files Nix does not sign: they are served as the upstream or the uploader sent them
 * (compressed bytes stay compressed, with their Content-Encoding), and never signed by us. Who may
 * write them is decided as for every upload (the put token); upstreams are the configured ones only.
 */
@Injectable()
export class ArtifactService {
  private readonly logger = new Logger('Artifacts');
  private readonly maxBytes: number;

  constructor(
    @Inject(NCPS_CONFIG) private readonly config: NcpsConfig,
    private readonly artifacts: ArtifactRepository,
    private readonly storage: StoragePort,
    private readonly locks: LockPort,
    private readonly upstreams: UpstreamService,
    private readonly access: AccessTracker,
    private readonly clock: Clock,
  ) {
    this.maxBytes = Math.min(MAX_ARTIFACT_BYTES, config.cache.maxNarSizeBytes);
  }

  /** The stored artifact, fetched from the upstreams first on a miss. NotFoundError when none has it. */
  async open(name: ArtifactName): Promise<ArtifactBody> {
    const stored = await this.openStored(name);
    if (stored) return stored;
    await this.locks.withLock(lockKey(name), this.config.lock.downloadTtlMs, async () => {
      // Another request (here or on another instance) may have stored it while we waited.
      const row = await this.artifacts.findByPath(name.path);
      if (row && (await this.storage.head(row.storageKey))) return;
      // A row whose object is gone (deleted behind our back) is dropped, and the file fetched again.
      if (row) await this.artifacts.deleteByPath(name.path);
      await this.fetch(name);
    });
    const fetched = await this.openStored(name);
    if (!fetched) throw new NotFoundError('not found');
    return fetched;
  }

  /**
   * Stores an upload. Bodies are limited in size and idle time as NAR uploads are; a Content-Encoding
   * the clients could not decode is refused. An artifact already stored is kept (they do not change:
   * a listing, a log or a realisation describes one build).
   */
  async put(name: ArtifactName, body: Readable, declaredLength: number | undefined, encodingHeader: string | undefined): Promise<void> {
    const encoding = uploadEncoding(encodingHeader);
    if (declaredLength !== undefined && declaredLength > this.maxBytes) throw this.tooLarge();
    await this.locks.withLock(lockKey(name), this.config.lock.downloadTtlMs, async () => {
      const guarded = guardUpload(body, { maxBytes: this.maxBytes, idleMs: this.config.server.requestIdleTimeoutMs }, this.clock);
      try {
        if (await this.artifacts.findByPath(name.path)) {
          // Read to the end, so that the client gets its answer after sending everything.
          await pipeline(guarded, discard());
          return;
        }
        await this.store(name, guarded, encoding);
      } catch (e) {
        throw e instanceof PayloadTooLargeError ? this.tooLarge() : e;
      }
    });
  }

  async delete(name: ArtifactName): Promise<void> {
    // Row first: a crash in between leaves an object nothing serves, never a row pointing at nothing.
    const hadRow = await this.artifacts.deleteByPath(name.path);
    const hadObject = await this.storage.delete(name.storageKey);
    if (!hadRow && !hadObject) throw new NotFoundError('not found');
  }

  private async openStored(name: ArtifactName): Promise<ArtifactBody | null> {
    const row = await this.artifacts.findByPath(name.path);
    if (!row) return null;
    const object = await this.storage.openRead(row.storageKey);
    if (!object) return null;
    // Rounded to the second, so that artifacts served in the same second share one UPDATE.
    this.access.artifactServed(name.path);
    return { size: object.size, contentEncoding: row.contentEncoding, stream: object.stream };
  }

  /** Under the artifact's lock: asks the upstreams and stores what the best one has. */
  private async fetch(name: ArtifactName): Promise<void> {
    const found = await this.upstreams.findArtifact(encodePath(name.path), ENCODINGS);
    if (!found) return;
    const { body, contentLength, upstream } = found;
    if (contentLength !== undefined && contentLength > this.maxBytes) {
      body.destroy();
      throw new UpstreamIntegrityError(`upstream ${upstream.host}: ${name.path} is larger than ${this.maxBytes} bytes`);
    }
    const encoding = found.contentEncoding === 'x-gzip' ? 'gzip' : (found.contentEncoding ?? null);
    await this.store(
      name,
      limit(
        body,
        this.maxBytes,
        () => new UpstreamIntegrityError(`upstream ${upstream.host}: ${name.path} is larger than ${this.maxBytes} bytes`),
      ),
      encoding,
    );
    this.logger.log({ path: name.path, upstream: upstream.url, content_encoding: encoding }, 'stored from upstream');
  }

  /** Object first, then its row: a row never points at nothing. A stale object with no row is replaced. */
  private async store(name: ArtifactName, source: Readable, encoding: string | null): Promise<void> {
    await this.storage.delete(name.storageKey);
    const { size } = await this.storage.put(name.storageKey, source);
    const now = this.clock.now();
    await this.artifacts.insertIfAbsent({
      path: name.path,
      kind: name.kind,
      storageKey: name.storageKey,
      narInfoHash: name.narInfoHash,
      fileSize: size,
      contentEncoding: encoding,
      createdAt: now,
      lastAccessedAt: now,
    });
  }

  private tooLarge(): PayloadTooLargeError {
    return new PayloadTooLargeError(`file larger than ${this.maxBytes} bytes`);
  }
}

/** The lock of one artifact, for fetches and uploads alike (cluster-wide with a distributed lock backend). */
const lockKey = (name: ArtifactName): string => `download:artifact:${name.storageKey}`;

/** `?` is allowed in store path names but would start a query string in a URL. */
const encodePath = (path: string): string => path.replace(/\?/g, '%3F');

function uploadEncoding(header: string | undefined): string | null {
  const encoding = header?.trim().toLowerCase();
  if (encoding === undefined || encoding === '' || encoding === 'identity') return null;
  if (!ENCODINGS.has(encoding)) throw new BadRequestError(`unsupported Content-Encoding '${encoding}'`);
  return encoding === 'x-gzip' ? 'gzip' : encoding;
}

/** Passes `source` through, failing with `tooLarge()` at the byte past `maxBytes`. */
function limit(source: Readable, maxBytes: number, tooLarge: () => Error): Readable {
  let received = 0;
  const guard = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      received += chunk.length;
      done(received > maxBytes ? tooLarge() : null, chunk);
    },
  });
  source.once('error', (e) => guard.destroy(e));
  guard.once('close', () => source.destroy());
  return source.pipe(guard);
}

function discard(): Writable {
  return new Writable({ write: (_chunk, _encoding, done) => done() });
}
