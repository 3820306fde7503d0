import { S3ServiceException } from '@aws-sdk/client-s3';
import { errorMessage, errorName } from 'src/common/error-fields';

/**
 * A missing object: GetObject names it NoSuchKey, HeadObject answers a bare 404 (HEAD has no body).
 * A missing bucket is also a 404 but must not pass for a cache miss where S3 says so (NoSuchBucket).
 */
export function isNotFound(error: unknown): boolean {
  if (!(error instanceof S3ServiceException) || error.name === 'NoSuchBucket') return false;
  return error.name === 'NoSuchKey' || error.name === 'NotFound' || error.$metadata.httpStatusCode === 404;
}

/** Errnos of a connection that broke or could not be made: worth another attempt. */
const TRANSIENT_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN']);

/**
 * A failure that another attempt may not meet: S3 failed (5xx) or throttled us (429, SlowDown), the
 * SDK's socket timed out, or the connection broke. Client errors (4xx: credentials, bucket, request)
 * and local ones (the file to send) are final.
 */
export function isTransient(error: unknown): boolean {
  if (error instanceof S3ServiceException) {
    const status = error.$metadata.httpStatusCode ?? 0;
    return status >= 500 || status === 429 || error.name === 'SlowDown';
  }
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return errorName(error) === 'TimeoutError' || (code !== undefined && TRANSIENT_CODES.has(code));
}

export function isInvalidRange(error: unknown): boolean {
  return error instanceof S3ServiceException && (error.name === 'InvalidRange' || error.$metadata.httpStatusCode === 416);
}

/**
 * Explains why HeadBucket failed, for /health and startup. HEAD responses carry no error body, so
 * the status code is what tells a missing bucket (404) from refused credentials (403). The message
 * names the bucket and endpoint, never a credential.
 */
export function explainBucketError(error: unknown, bucket: string, endpoint: string): Error {
  const where = `S3 bucket "${bucket}" at ${endpoint}`;
  if (error instanceof S3ServiceException) {
    const status = error.$metadata.httpStatusCode;
    const name = error.name;
    if (status === 404 || name === 'NoSuchBucket' || name === 'NotFound') {
      return new Error(`${where} does not exist (create it, or fix --cache-storage-s3-bucket)`, { cause: error });
    }
    if (status === 403 || ['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AccessDenied'].includes(name)) {
      return new Error(
        `${where} refused our credentials (HTTP 403${name && name !== 'Unknown' ? ` ${name}` : ''}): check the access key ` +
          'id and secret access key, and that they may list the bucket (s3:ListBucket)',
        { cause: error },
      );
    }
    if (status === 301 || name === 'PermanentRedirect') {
      return new Error(`${where} is in another region: set --cache-storage-s3-region to the bucket's region`, {
        cause: error,
      });
    }
    return new Error(`${where} answered HTTP ${status ?? '?'} ${name}`, { cause: error });
  }
  // Our own deadline on the probe aborts the request (AbortError); the SDK's socket timeouts say TimeoutError.
  const name = errorName(error);
  if (name === 'AbortError' || name === 'TimeoutError') {
    return new Error(`${where} did not answer in time`, { cause: error });
  }
  // Connection failures: the message names the errno and the address (ECONNREFUSED, ENOTFOUND...).
  return new Error(`cannot reach ${where}: ${errorMessage(error)}`, { cause: error });
}
