import { Injectable } from '@nestjs/common';
import { createHash } from 'node:crypto';

/** A digest computed as the bytes go by: each chunk is hashed where it is, never copied. */
export interface RunningHash {
  update(chunk: Buffer): unknown;
  digest(): Buffer;
}

/**
 * The hashes a download checks its bytes with, so that what decides about a download is apart from
 * the crypto it uses. An abstract class so that it is the DI token and fakes are typed against it.
 */
export abstract class Hashing {
  abstract sha256(): RunningHash;
}

/** Hashing on node:crypto. */
@Injectable()
export class NodeHashing extends Hashing {
  sha256(): RunningHash {
    return createHash('sha256');
  }
}
