import { Worker } from 'node:worker_threads';
import { IntegrityError } from './integrity-error';
import { NarExpectation, NarVerifier, checkNar, tooLarge } from './nar-check';

/**
 * The worker: unbzip2-stream's block decoder (pure JS, ~200 ms per 900 kB block, so never on the
 * event loop), fed chunk by chunk; it hashes and counts what it decodes and answers each chunk
 * with an ack (backpressure), the end with size and digest, or a failure with `error`. Decoded
 * bytes go through a 64 KiB buffer, so memory stays flat even for a block that expands 50-fold,
 * and decoding stops the moment the output passes NarSize. Plain JS evaluated as a worker, so it
 * runs the same from ts-jest and from dist/.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const bz2 = require(workerData.bzip2Path);
const bitIterator = require(workerData.bitIteratorPath);
const narSize = workerData.narSize;
const hash = createHash('sha256');
const out = Buffer.allocUnsafe(65536);
let filled = 0, decoded = 0;
const queue = [];
let received = 0, reader = null, blockSize = 0, streamCRC = null, blockBuffer = null;
class TooLarge extends Error {}
function flush() {
  decoded += filled;
  if (decoded > narSize) throw new TooLarge();
  hash.update(out.subarray(0, filled));
  filled = 0;
}
function emit(byte) {
  out[filled++] = byte;
  if (filled === out.length) flush();
}
// One stream header or one block (the same steps as unbzip2-stream's own stream wrapper).
function step() {
  if (!blockSize) {
    blockSize = bz2.header(reader);
    blockBuffer = new Int32Array(100000 * blockSize);
    streamCRC = 0;
    return;
  }
  streamCRC = bz2.decompress(reader, emit, blockBuffer, 100000 * blockSize, streamCRC);
  if (streamCRC === null) blockSize = 0;
}
parentPort.on('message', (message) => {
  try {
    if (message.chunk) {
      queue.push(message.chunk);
      received += message.chunk.length;
      if (reader === null) reader = bitIterator(() => queue.shift());
      // A block is decoded only once all of it can have arrived: the bit reader cannot wait.
      while (received - reader.bytesRead + 1 >= 25000 + 100000 * blockSize) step();
      parentPort.postMessage({ ack: true });
    } else {
      while (reader !== null && received > reader.bytesRead) step();
      if (reader === null || streamCRC !== null) throw new Error('bzip2 stream ended prematurely');
      flush();
      parentPort.postMessage({ size: decoded, digest: hash.digest() });
    }
  } catch (e) {
    parentPort.postMessage({ error: e instanceof TooLarge ? 'too-large' : String((e && e.message) || e) });
    parentPort.close();
  }
});
`;

type WorkerAnswer = { ack: true } | { size: number; digest: Uint8Array } | { error: string };

/** Checks a bzip2-compressed NAR in a worker thread of its own (see WORKER_SOURCE). */
export class Bzip2Verifier implements NarVerifier {
  private readonly worker: Worker;
  private waiting?: { resolve: (answer: WorkerAnswer) => void; reject: (error: IntegrityError) => void };
  private error?: IntegrityError;

  constructor(
    private readonly expected: NarExpectation,
    private readonly onFailure: (error: IntegrityError) => void,
  ) {
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        bzip2Path: require.resolve('unbzip2-stream/lib/bzip2'),
        bitIteratorPath: require.resolve('unbzip2-stream/lib/bit_iterator'),
        narSize: expected.narSize,
      },
      resourceLimits: { maxOldGenerationSizeMb: 64 },
    });
    this.worker.on('message', (answer: WorkerAnswer) => {
      if ('error' in answer) {
        const detail = `NAR does not decompress as bzip2: ${answer.error}`;
        return this.fail(answer.error === 'too-large' ? tooLarge(expected) : new IntegrityError(detail));
      }
      const waiting = this.waiting;
      this.waiting = undefined;
      waiting?.resolve(answer);
    });
    this.worker.on('error', (e) => this.fail(new IntegrityError(`bzip2 decoder failed: ${e.message}`)));
    this.worker.on('exit', () => this.fail(new IntegrityError('bzip2 decoder stopped')));
  }

  async feed(chunk: Buffer): Promise<void> {
    // A copy of exactly the chunk's bytes, moved (not cloned) to the worker.
    const copy = new Uint8Array(chunk);
    await this.ask({ chunk: copy }, [copy.buffer]);
  }

  async finish(): Promise<void> {
    const answer = await this.ask({ end: true }, []);
    this.abort();
    if (!('size' in answer)) throw new IntegrityError('bzip2 decoder gave no result');
    checkNar(this.expected, answer.size, Buffer.from(answer.digest));
  }

  abort(): void {
    this.error ??= new IntegrityError('bzip2 check aborted');
    void this.worker.terminate();
  }

  private ask(message: object, transfer: ArrayBuffer[]): Promise<WorkerAnswer> {
    if (this.error) return Promise.reject(this.error);
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.worker.postMessage(message, transfer);
    });
  }

  private fail(error: IntegrityError): void {
    if (this.error) return;
    this.error = error;
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.reject(error);
    void this.worker.terminate();
    this.onFailure(error);
  }
}
