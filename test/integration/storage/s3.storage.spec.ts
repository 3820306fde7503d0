import { ListMultipartUploadsCommand, S3Client } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { IncomingMessage, ServerResponse, createServer as createHttpServer, request as httpRequest } from 'node:http';
import { AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3Storage } from 'src/storage/providers/s3.storage';
import { S3rverHandle, startS3rver, uniqueBucketName } from 'test/support/s3rver';
import { describeStorageConformance } from './storage.conformance';

let server: S3rverHandle;

/** A loopback port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

describeStorageConformance(
  's3 (s3rver)',
  async () => {
    server = await startS3rver();
    const admin = new S3Client({
      endpoint: server.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    });
    return {
      storage: new S3Storage(server.config),
      leftovers: async () => {
        const out = await admin.send(new ListMultipartUploadsCommand({ Bucket: server.bucket }));
        return (out.Uploads ?? []).map((upload) => `${upload.Key} (upload ${upload.UploadId})`);
      },
      teardown: async () => {
        admin.destroy();
        await server.stop();
      },
    };
  },
  [
    {
      situation: 'the bucket does not exist',
      make: async () => new S3Storage({ ...server.config, bucket: uniqueBucketName('ncps-missing') }),
      message: /S3 bucket "ncps-missing-[^"]+" at http:\/\/127\.0\.0\.1:\d+ does not exist/,
    },
    {
      // s3rver checks the access key id but not V4 signatures, so a wrong id stands for bad credentials.
      situation: 'the credentials are wrong',
      make: async () => new S3Storage({ ...server.config, accessKeyId: 'WRONGKEYID', secretAccessKey: 'never-print-this-secret' }),
      message: /refused our credentials \(HTTP 403.*\): check the access key id and secret access key/,
      secret: 'never-print-this-secret',
    },
    {
      situation: 'the endpoint is unreachable',
      make: async () => new S3Storage({ ...server.config, endpoint: `http://127.0.0.1:${await closedPort()}` }),
      message: /cannot reach S3 bucket .*ECONNREFUSED/,
      secret: 'S3RVER',
    },
  ],
);

/**
 * An HTTP hop between S3Storage and s3rver that records what passes and can answer the next PUTs
 * with an S3 error instead of forwarding them.
 */
class FaultyHop {
  readonly requests: string[] = [];
  /** The x-amz-content-sha256 header of each PUT: a payload hash, or UNSIGNED-PAYLOAD for a streamed body. */
  readonly payloadHashes: string[] = [];
  private readonly faults: { status: number; code: string }[] = [];
  private readonly server = createHttpServer((req, res) => this.handle(req, res));

  constructor(private readonly target: URL) {}

  get endpoint(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** The next `times` PUTs are answered with `status` and the S3 error `code`. */
  failPuts(times: number, status: number, code: string): void {
    for (let i = 0; i < times; i++) this.faults.push({ status, code });
  }

  /** Forgets what passed and the faults not used yet. */
  reset(): void {
    this.requests.length = 0;
    this.payloadHashes.length = 0;
    this.faults.length = 0;
  }

  puts(): string[] {
    return this.requests.filter((request) => request.startsWith('PUT '));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    this.requests.push(`${req.method} ${req.url}`);
    if (req.method === 'PUT') this.payloadHashes.push(String(req.headers['x-amz-content-sha256']));
    const fault = req.method === 'PUT' ? this.faults.shift() : undefined;
    if (fault) {
      req.resume();
      req.on('end', () => {
        res.writeHead(fault.status, { 'content-type': 'application/xml' });
        res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${fault.code}</Code><Message>injected</Message></Error>`);
      });
      return;
    }
    const forwarded = httpRequest(
      { host: this.target.hostname, port: this.target.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forwarded.on('error', () => res.destroy());
    req.pipe(forwarded);
  }
}

describe('S3Storage.putFile (s3rver behind a hop that can fail)', () => {
  let s3: S3rverHandle;
  let hop: FaultyHop;
  let dir: string;
  let storage: S3Storage;
  let counter = 0;

  /** A fresh key and a file of `bytes` random bytes. */
  const fileOf = async (bytes: number) => {
    const content = randomBytes(bytes);
    const path = join(dir, `file-${counter}`);
    await writeFile(path, content);
    return { key: `nar/put-file-${counter++}.nar`, path, content };
  };
  const stored = async (key: string) => {
    const stream = await storage.read(key);
    if (!stream) return null;
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  };

  beforeAll(async () => {
    s3 = await startS3rver();
    hop = new FaultyHop(new URL(s3.endpoint));
    await hop.start();
    dir = await mkdtemp(join(tmpdir(), 'ncps-s3-put-file-'));
    // Files over 1 MiB take the multipart path here (64 MiB in service).
    storage = new S3Storage({ ...s3.config, endpoint: hop.endpoint }, 1024 * 1024);
  });

  afterAll(async () => {
    await storage?.close();
    await hop?.stop();
    await s3?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  beforeEach(() => hop.reset());

  it('streams a small file as one PutObject and sends a larger one in parts, both stored whole', async () => {
    const small = await fileOf(512 * 1024);
    expect(await storage.putFile(small.key, small.path)).toEqual({ size: small.content.length, created: true });
    expect(hop.puts()).toEqual([`PUT /${s3.bucket}/${small.key}?x-id=PutObject`]);
    // Streamed from the file: a body held in memory would have been hashed for the signature.
    expect(hop.payloadHashes).toEqual(['UNSIGNED-PAYLOAD']);
    expect((await stored(small.key))?.equals(small.content)).toBe(true);

    hop.reset();
    const large = await fileOf(9 * 1024 * 1024);
    expect(await storage.putFile(large.key, large.path)).toEqual({ size: large.content.length, created: true });
    expect(hop.requests.some((request) => request.startsWith(`POST /${s3.bucket}/${large.key}?uploads`))).toBe(true);
    expect(hop.puts().every((request) => /[?&]partNumber=\d+/.test(request))).toBe(true);
    expect((await stored(large.key))?.equals(large.content)).toBe(true);
  });

  it('sends the file again from its start after S3 asked to slow down (503) or failed (500)', async () => {
    const file = await fileOf(300 * 1024);
    hop.failPuts(1, 503, 'SlowDown');
    hop.failPuts(1, 500, 'InternalError');
    expect(await storage.putFile(file.key, file.path)).toEqual({ size: file.content.length, created: true });
    expect(hop.puts()).toHaveLength(3);
    expect((await stored(file.key))?.equals(file.content)).toBe(true);
  });

  it('gives up after three failed attempts, and stores nothing', async () => {
    const file = await fileOf(1000);
    hop.failPuts(3, 500, 'InternalError');
    await expect(storage.putFile(file.key, file.path)).rejects.toMatchObject({ name: 'InternalError' });
    expect(hop.puts()).toHaveLength(3);
    expect(await storage.head(file.key)).toBeNull();
  });

  it('does not try again after a client error (4xx), and stores nothing', async () => {
    const file = await fileOf(1000);
    hop.failPuts(1, 400, 'InvalidRequest');
    await expect(storage.putFile(file.key, file.path)).rejects.toMatchObject({ name: 'InvalidRequest' });
    expect(hop.puts()).toHaveLength(1);
    expect(await storage.head(file.key)).toBeNull();
  });

  it('keeps an object already stored without sending the file', async () => {
    const file = await fileOf(2000);
    await storage.putFile(file.key, file.path);
    hop.reset();
    const other = await fileOf(2000);
    expect(await storage.putFile(file.key, other.path)).toEqual({ size: 2000, created: false });
    expect(hop.puts()).toEqual([]);
    expect((await stored(file.key))?.equals(file.content)).toBe(true);
  });
});
