import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rename, rm } from 'node:fs/promises';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { S3StorageConfig } from 'src/config/config';

/** The part of s3rver's Koa surface we use (s3rver 3 ships no type declarations). */
interface KoaContext {
  method: string;
  path: string;
  query: Record<string, string | string[] | undefined>;
  status: number;
  body: unknown;
}
type Middleware = (ctx: KoaContext, next: () => Promise<void>) => Promise<void>;
interface StoredObjectInput {
  bucket: string;
  key: string;
  content: Buffer | Readable;
  metadata: Record<string, string>;
}
interface StoredObjectOutput {
  content: Readable | null;
  range?: { start: number; end: number };
}
interface FilesystemStore {
  getResourcePath(bucket: string, key: string, resource: string): string;
  getObject(bucket: string, key: string, options?: { start?: number; end?: number }): Promise<StoredObjectOutput | null>;
  putMetadata(bucket: string, key: string, metadata: Record<string, string>, md5: string): Promise<void>;
  putObject(object: StoredObjectInput): Promise<{ size: number; md5: string }>;
}
interface S3rverInstance {
  middleware: Middleware[];
  store: FilesystemStore;
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
}
type S3rverConstructor = new (options: {
  address: string;
  port: number;
  directory: string;
  silent: boolean;
  configureBuckets: { name: string }[];
}) => S3rverInstance;
const S3rver = require('s3rver') as S3rverConstructor;

export interface S3rverHandle {
  endpoint: string;
  bucket: string;
  /** Ready for S3Storage: path-style addressing and s3rver's fixed credentials. */
  config: S3StorageConfig;
  /** Removes the server's directory too. */
  stop(): Promise<void>;
}

/** A bucket name that is valid for S3 (3–63 lowercase characters) and unique per call. */
export function uniqueBucketName(prefix = 'ncps-test'): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
}

/**
 * Starts s3rver on a random loopback port with its own temporary directory and one fresh bucket.
 * Nothing is shared between calls, so suites can run in parallel.
 */
export async function startS3rver(): Promise<S3rverHandle> {
  const directory = await mkdtemp(join(tmpdir(), 'ncps-s3rver-'));
  const bucket = uniqueBucketName();
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    directory,
    silent: true,
    configureBuckets: [{ name: bucket }],
  });
  makeObjectWritesAtomic(server.store);
  honourRangesEndingAtZero(server.store);
  addMultipartUploadManagement(server, directory);
  const handlers = countRunningHandlers(server);
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    bucket,
    config: {
      bucket,
      endpoint,
      region: 'us-east-1',
      accessKeyId: 'S3RVER',
      secretAccessKey: 'S3RVER',
      forcePathStyle: true,
    },
    async stop() {
      await server.close();
      await handlers.finished();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

/**
 * The server's close resolves once its connections are closed, but a handler whose client went away
 * (an instance stopped mid-upload) still runs, and logs when it fails: after its test file ended, Jest
 * counts that as an error of the run. `finished` waits for those handlers (10 s at most).
 */
function countRunningHandlers(server: S3rverInstance): { finished(): Promise<void> } {
  let running = 0;
  let idle: (() => void) | undefined;
  server.middleware.unshift(async (_ctx, next) => {
    running++;
    try {
      await next();
    } finally {
      if (--running === 0) idle?.();
    }
  });
  return {
    finished: () =>
      running === 0
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, 10_000);
            idle = () => {
              clearTimeout(timer);
              resolve();
            };
          }),
  };
}

/**
 * s3rver 3 implements multipart upload but answers AbortMultipartUpload with MethodNotAllowed and
 * ListMultipartUploads with NotImplemented. Real S3 has both, and the storage contract ("a failed
 * upload leaves no multipart upload behind") can only be tested with them, so this adds the two
 * operations over s3rver's own on-disk layout (`<dir>/<bucket>/._S3rver_uploads/<uploadId>/key`).
 * They skip s3rver's signature check, which only matters for a test server.
 */
function addMultipartUploadManagement(server: S3rverInstance, directory: string): void {
  const uploadsDir = (bucket: string) => join(directory, bucket, '._S3rver_uploads');
  const handler: Middleware = async (ctx, next) => {
    const [, bucket, key] = /^\/([^/]+)\/?(.*)$/.exec(ctx.path) ?? [];
    if (ctx.method === 'DELETE' && bucket && key && typeof ctx.query.uploadId === 'string') {
      const uploadDir = join(uploadsDir(bucket), ctx.query.uploadId.replace(/[^0-9a-f]/g, ''));
      await rm(uploadDir, { recursive: true, force: true });
      ctx.status = 204;
      return;
    }
    if (ctx.method === 'GET' && bucket && !key && ctx.query.uploads !== undefined) {
      const ids = await readdir(uploadsDir(bucket)).catch(() => [] as string[]);
      const uploads = await Promise.all(
        ids.map(async (id) => ({ Key: await readFile(join(uploadsDir(bucket), id, 'key'), 'utf8'), UploadId: id })),
      );
      // s3rver serialises plain objects in ctx.body to XML.
      ctx.body = { ListMultipartUploadsResult: { Bucket: bucket, IsTruncated: false, Upload: uploads } };
      return;
    }
    await next();
  };
  // Koa composes `middleware` when the server starts listening; s3rver's router is the last entry,
  // and must come after this handler (its own serialiser and path handling come before).
  server.middleware.splice(server.middleware.length - 1, 0, handler);
}

/**
 * s3rver 3 writes an object straight into its final file and answers before the bytes are on disk,
 * so a concurrent GET can return a truncated object — which S3 never does, and which the conformance
 * suite's "readers during a write" test would blame on our provider. Same store layout, but written
 * to a temporary name (not ending in `._S3rver_object`, so never listed) and renamed when complete.
 */
function makeObjectWritesAtomic(store: FilesystemStore): void {
  store.putObject = async (object) => {
    const objectPath = store.getResourcePath(object.bucket, object.key, 'object');
    const temporary = `${objectPath}.${randomBytes(8).toString('hex')}.uploading`;
    await mkdir(dirname(objectPath), { recursive: true });
    const md5 = createHash('md5');
    let size = 0;
    const measure = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        md5.update(chunk);
        size += chunk.length;
        callback(null, chunk);
      },
    });
    const content = Buffer.isBuffer(object.content) ? Readable.from([object.content]) : object.content;
    try {
      await pipeline(content, measure, createWriteStream(temporary));
      await rename(temporary, objectPath);
    } finally {
      await rm(temporary, { force: true });
    }
    const digest = md5.digest('hex');
    await store.putMetadata(object.bucket, object.key, object.metadata, digest);
    return { size, md5: digest };
  };
}

/**
 * s3rver 3 reads the range end with `end || Infinity`, so `Range: bytes=0-0` (the first byte, which
 * S3 returns as one byte) returns the whole object. This re-opens such a read with the right range.
 */
function honourRangesEndingAtZero(store: FilesystemStore): void {
  const getObject = store.getObject.bind(store);
  store.getObject = async (bucket, key, options) => {
    const object = await getObject(bucket, key, options);
    if (object?.content && object.range && options?.end === 0) {
      object.content.destroy();
      object.content = createReadStream(store.getResourcePath(bucket, key, 'object'), { start: 0, end: 0 });
      object.range = { start: 0, end: 0 };
    }
    return object;
  };
}
