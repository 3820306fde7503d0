import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  paginateListObjectsV2,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { Logger } from '@nestjs/common';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { errorMessage } from 'src/common/error-fields';
import { RetryPolicy, retry } from 'src/common/retry';
import { S3StorageConfig } from 'src/config/config';
import { ByteRange, FILE_READ_BYTES, OpenedObject, PutResult, StoragePort, StoredObject, assertSafeKey } from 'src/storage/storage.port';
import { discard } from 'src/storage/storage.discard';
import { assertSafePrefix, assertValidRange, unsatisfiableRange } from 'src/storage/storage.validation';
import { explainBucketError, isInvalidRange, isNotFound, isTransient } from './s3.errors';

/**
 * Multipart upload of a stream of unknown length. lib-storage buffers each part in memory (and copies
 * it once while cutting it) and sends up to QUEUE_SIZE parts at once, so an upload's memory depends
 * on these two and not on the object's size: bench/s3-memory.ts measured ~+90 MiB RSS for 256 MiB,
 * 1 GiB and 2 GiB alike (each extra queued part costs ~20 MiB). S3 allows 10 000 parts, so 8 MiB parts
 * cap an object at ~78 GiB (5 MiB, the minimum, would cap it at ~48 GiB).
 */
const PART_SIZE = 8 * 1024 * 1024;
const QUEUE_SIZE = 2;

/**
 * A finished file up to this size (most NARs) is sent by putFile as one PutObject streamed from the
 * file: no part buffers, no copy, no SigV4 hash of the payload (a stream is signed UNSIGNED-PAYLOAD).
 * Measured on a 32 MiB NAR: ~110 ms of CPU for the whole miss instead of ~385 ms, most of which was
 * V8's major collections after the 8 MiB part buffers (bench/README, issue 12, ninth round). Larger
 * files keep the multipart upload, whose parts the SDK retries on their own.
 */
const SINGLE_PUT_MAX_BYTES = 64 * 1024 * 1024;
/**
 * The SDK cannot retry a request whose body is a stream, so putFile does, reading the file again:
 * three tries in all, when S3 failed or throttled (5xx, 429) or the connection broke.
 */
const PUT_RETRY: RetryPolicy = { attempts: 3, retryable: isTransient, delayMs: (attempt) => 200 * 5 ** (attempt - 1) };

/** /health must answer even when the endpoint swallows packets. */
const CHECK_TIMEOUT_MS = 5_000;
const CONNECTION_TIMEOUT_MS = 5_000;

/** Objects in one S3 (or S3-compatible) bucket, keys used as object names as they are. */
export class S3Storage extends StoragePort {
  readonly kind = 's3';
  private readonly logger = new Logger(S3Storage.name);
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly where: string;

  constructor(
    config: S3StorageConfig,
    /** Tests lower it to reach the multipart path with small files. */
    private readonly singlePutMaxBytes = SINGLE_PUT_MAX_BYTES,
  ) {
    super();
    const region = config.region ?? 'us-east-1';
    this.bucket = config.bucket;
    this.where = config.endpoint ?? `AWS region ${region}`;
    this.client = new S3Client({
      region,
      endpoint: config.endpoint,
      forcePathStyle: config.forcePathStyle,
      // Without static keys the SDK's default chain applies (env, profile, web identity, IMDS...).
      credentials:
        config.accessKeyId && config.secretAccessKey
          ? { accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey }
          : undefined,
      // The SDK's default CRC32 checksums on every request are refused by several S3-compatible
      // stores; NAR integrity is verified by hash before anything is stored anyway.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: { connectionTimeout: CONNECTION_TIMEOUT_MS },
      // Without a logger of ours the SDK writes its warnings (one per failed streamed PutObject, which
      // putFile retries itself and logs) to the console, outside the structured log.
      logger: {
        trace: () => undefined,
        debug: () => undefined,
        info: () => undefined,
        warn: (...content: unknown[]) => this.logger.debug({ sdk: content.map(String).join(' ') }, 'S3 SDK warning'),
        error: (...content: unknown[]) => this.logger.debug({ sdk: content.map(String).join(' ') }, 'S3 SDK error'),
      },
    });
  }

  /**
   * Content-addressed keys make an existing object final, so it is kept without re-uploading.
   * Two writers racing past that check both upload the same bytes and the last one wins, harmlessly;
   * both then report created:true. On any failure lib-storage aborts the multipart upload before the
   * returned promise rejects, so no object and no upload parts stay behind (if the abort itself
   * fails, the bucket's AbortIncompleteMultipartUpload lifecycle rule is the backstop).
   */
  async put(key: string, source: Readable): Promise<PutResult> {
    assertSafeKey(key);
    const existing = await this.head(key);
    if (existing) {
      await discard(source);
      return { size: existing.size, created: false };
    }
    let size = 0;
    const body = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        size += chunk.length;
        callback(null, chunk);
      },
    });
    // pipeline forwards a source error into `body`, which fails the upload; when the upload fails
    // first, it stops reading `body`, whose destruction pipeline passes back to the source.
    const piping = pipeline(source, body).catch(() => undefined);
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: key, Body: body },
      partSize: PART_SIZE,
      queueSize: QUEUE_SIZE,
    });
    try {
      await upload.done();
    } finally {
      body.destroy();
      await piping;
    }
    return { size, created: true };
  }

  /**
   * A finished file: one PutObject streamed from it, retried (from the start of the file) on a
   * transient failure, when it is small enough (see SINGLE_PUT_MAX_BYTES); a multipart `put` if not.
   * An object already stored is kept, as by `put`.
   */
  override async putFile(key: string, path: string): Promise<PutResult> {
    assertSafeKey(key);
    const { size } = await stat(path);
    if (size > this.singlePutMaxBytes) return super.putFile(key, path);
    const existing = await this.head(key);
    if (existing) return { size: existing.size, created: false };
    const put = async () => {
      const body = createReadStream(path, { highWaterMark: FILE_READ_BYTES });
      try {
        await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentLength: size }));
      } catch (error) {
        if (isTransient(error))
          this.logger.warn({ key, err: errorMessage(error) }, `S3 PutObject failed (transient: tried up to ${PUT_RETRY.attempts} times)`);
        throw error;
      } finally {
        body.destroy();
      }
    };
    await retry(put, PUT_RETRY);
    return { size, created: true };
  }

  async head(key: string): Promise<StoredObject | null> {
    assertSafeKey(key);
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { key, size: out.ContentLength ?? 0 };
    } catch (error) {
      if (isNotFound(error)) return null;
      throw error;
    }
  }

  async read(key: string, range?: ByteRange): Promise<Readable | null> {
    assertSafeKey(key);
    if (range) assertValidRange(range);
    return (await this.get(key, range))?.stream ?? null;
  }

  /** Without a range, one GetObject tells the size and streams the bytes; choosing a range needs the size first. */
  async openRead(key: string, pickRange?: (size: number) => ByteRange | undefined): Promise<OpenedObject | null> {
    assertSafeKey(key);
    if (!pickRange) return this.get(key);
    const stored = await this.head(key);
    if (!stored) return null;
    const wanted = pickRange(stored.size);
    if (wanted) {
      assertValidRange(wanted);
      if (wanted.start >= stored.size) throw unsatisfiableRange(key, wanted);
    }
    const range = wanted && { start: wanted.start, end: Math.min(wanted.end, stored.size - 1) };
    const got = await this.get(key, range);
    return got && { size: stored.size, range, stream: got.stream };
  }

  /** GetObject; `size` is the length of what it returns (the object's size when there is no range). */
  private async get(key: string, range?: ByteRange): Promise<{ size: number; stream: Readable } | null> {
    try {
      const out = await this.client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Range: range ? `bytes=${range.start}-${range.end}` : undefined,
        }),
      );
      if (!(out.Body instanceof Readable)) throw new Error(`S3 GetObject ${key}: the body is not a Node.js stream`);
      if (out.ContentLength === undefined) {
        out.Body.destroy();
        throw new Error(`S3 GetObject ${key}: the response has no Content-Length`);
      }
      return { size: out.ContentLength, stream: out.Body };
    } catch (error) {
      if (isNotFound(error)) return null;
      if (range && isInvalidRange(error)) throw unsatisfiableRange(key, range);
      throw error;
    }
  }

  /** S3's DeleteObject succeeds whether or not the key exists, so HeadObject tells which it was. */
  async delete(key: string): Promise<boolean> {
    if (!(await this.head(key))) return false;
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    return true;
  }

  async *list(prefix = ''): AsyncIterable<StoredObject> {
    assertSafePrefix(prefix);
    const pages = paginateListObjectsV2({ client: this.client }, { Bucket: this.bucket, Prefix: prefix || undefined });
    for await (const page of pages) {
      for (const object of page.Contents ?? []) {
        if (object.Key !== undefined) yield { key: object.Key, size: object.Size ?? 0 };
      }
    }
  }

  /** HeadBucket: one cheap request that proves the endpoint, the bucket and the credentials. */
  async check(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }), {
        abortSignal: AbortSignal.timeout(CHECK_TIMEOUT_MS),
      });
    } catch (error) {
      throw explainBucketError(error, this.bucket, this.where);
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}
