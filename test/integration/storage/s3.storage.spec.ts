import { ListMultipartUploadsCommand, S3Client } from '@aws-sdk/client-s3';
import { createServer } from 'node:net';
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
