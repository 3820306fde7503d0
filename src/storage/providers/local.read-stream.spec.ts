import { randomBytes } from 'node:crypto';
import { fstatSync, openSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { IncomingMessage, Server, ServerResponse, createServer, get } from 'node:http';
import { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { once } from 'node:events';
import { FileReadStream, MAX_CHUNK_BUFFERS_OUT, READ_CHUNK_BYTES, SMALL_CHUNK_BYTES } from './local.read-stream';

async function collect(stream: Readable): Promise<Buffer[]> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return chunks;
}

async function closed(stream: Readable): Promise<void> {
  if (!stream.closed) await once(stream, 'close');
}

function isClosed(fd: number): boolean {
  try {
    fstatSync(fd);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EBADF';
  }
}

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setImmediate(resolve));
}

/** A ServerResponse whose writes go to `write` (its return value is write()'s) and whose end resolves `ended`. */
function fakeResponse(write: (chunk: Buffer, done: () => void) => boolean): { response: ServerResponse; ended: Promise<void> } {
  const response = new ServerResponse(new IncomingMessage(new Socket()));
  response.write = ((chunk: Buffer, done: () => void) => write(chunk, done)) as typeof response.write;
  const ended = new Promise<void>((resolve) => {
    response.end = (() => (resolve(), response)) as typeof response.end;
  });
  return { response, ended };
}

describe('FileReadStream', () => {
  let dir: string;
  let bytes: Buffer;
  let path: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ncps-read-stream-'));
    bytes = randomBytes(2 * READ_CHUNK_BYTES + 12345);
    path = join(dir, 'object');
    await writeFile(path, bytes);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  describe('read as a Readable', () => {
    it('streams bytes start..end in chunks of at most READ_CHUNK_BYTES, then closes the file', async () => {
      const fd = openSync(path, 'r');
      const sut = new FileReadStream(fd, 100, bytes.length - 51);

      const chunks = await collect(sut);

      expect(Buffer.concat(chunks).equals(bytes.subarray(100, bytes.length - 50))).toBe(true);
      expect(chunks.every((c) => c.length <= READ_CHUNK_BYTES)).toBe(true);
      expect(chunks.length).toBe(3);
      await closed(sut);
      expect(isClosed(fd)).toBe(true);
    });

    it('streams nothing for an empty range', async () => {
      const sut = new FileReadStream(openSync(path, 'r'), 0, -1);

      expect(await collect(sut)).toEqual([]);
    });

    it('fails when the file is shorter than announced', async () => {
      const sut = new FileReadStream(openSync(path, 'r'), 0, bytes.length + 10);

      await expect(collect(sut)).rejects.toThrow(/file ended at byte/);
    });

    it('closes the file when destroyed while a read is in flight', async () => {
      const fd = openSync(path, 'r');
      const sut = new FileReadStream(fd, 0, bytes.length - 1);
      sut.read(0);

      sut.destroy();
      await closed(sut);

      expect(isClosed(fd)).toBe(true);
    });

    it('gives any other pipe destination the ordinary pipe', async () => {
      const sut = new FileReadStream(openSync(path, 'r'), 0, bytes.length - 1);

      const chunks = await collect(sut.pipe(new PassThrough()));

      expect(Buffer.concat(chunks).equals(bytes)).toBe(true);
    });
  });

  describe('piped into an HTTP response', () => {
    let server: Server;
    let base: string;
    const files = new Map<string, { path: string; bytes: Buffer }>();
    const served: { stream: FileReadStream; fd: number }[] = [];

    beforeAll(async () => {
      for (const name of ['/slow', '/fast']) {
        const content = randomBytes(8 * READ_CHUNK_BYTES + 777);
        const file = join(dir, name.slice(1));
        await writeFile(file, content);
        files.set(name, { path: file, bytes: content });
      }
      files.set('/object', { path, bytes });
      server = createServer((req, res) => {
        const file = files.get(req.url ?? '')!;
        const fd = openSync(file.path, 'r');
        const stream = new FileReadStream(fd, 0, file.bytes.length - 1);
        served.push({ stream, fd });
        res.setHeader('content-length', file.bytes.length);
        // As Fastify does: a response closed before it finished destroys its source.
        res.on('close', () => res.writableFinished || stream.destroy());
        stream.pipe(res);
      }).listen(0, '127.0.0.1');
      await once(server, 'listening');
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterAll(async () => {
      server.close();
      await once(server, 'close');
    });

    const request = (name: string): Promise<IncomingMessage> =>
      new Promise((resolve, reject) => get(`${base}${name}`, { agent: false }, resolve).on('error', reject));

    it('sends every byte, then ends the stream and closes the file', async () => {
      const body = Buffer.concat(await collect(await request('/object')));
      const { stream, fd } = served.at(-1)!;
      await closed(stream);

      expect(body.equals(bytes)).toBe(true);
      expect(stream.readableEnded).toBe(true);
      expect(isClosed(fd)).toBe(true);
    });

    it('reuses no buffer before the socket has taken all of it', async () => {
      // A response whose writes complete only when the test says so; it keeps the chunks it is given.
      const held: { chunk: Buffer; done: () => void }[] = [];
      const slow = fakeResponse((chunk, done) => (held.push({ chunk, done }), false));
      const fastChunks: Buffer[] = [];
      const fast = fakeResponse((chunk, done) => (fastChunks.push(Buffer.from(chunk)), setImmediate(done), true));
      const fastFile = files.get('/fast')!;
      new FileReadStream(openSync(path, 'r'), 0, bytes.length - 1).pipe(slow.response);

      const received: Buffer[] = [];
      for (let i = 0; i < 3; i++) {
        await until(() => held.length > i);
        // While the first chunk waits for the socket, another response goes through the buffers.
        if (i === 0) {
          new FileReadStream(openSync(fastFile.path, 'r'), 0, fastFile.bytes.length - 1).pipe(fast.response);
          await fast.ended;
        }
        received.push(Buffer.from(held[i].chunk));
        held[i].done();
      }
      await slow.ended;

      expect(Buffer.concat(fastChunks).equals(fastFile.bytes)).toBe(true);
      expect(Buffer.concat(received).equals(bytes)).toBe(true);
    });

    it('sends small chunks while every large buffer is out, and counts those of closed streams as back', async () => {
      const holding = () => {
        const held: Buffer[] = [];
        const { response } = fakeResponse((chunk) => (held.push(chunk), false));
        const stream = new FileReadStream(openSync(path, 'r'), 0, bytes.length - 1);
        stream.pipe(response);
        return { held, stream };
      };
      const readers = Array.from({ length: MAX_CHUNK_BUFFERS_OUT + 1 }, holding);
      await until(() => readers.every((r) => r.held.length === 1));

      expect(readers.filter((r) => r.held[0].length === READ_CHUNK_BYTES).length).toBe(MAX_CHUNK_BUFFERS_OUT);
      expect(readers.filter((r) => r.held[0].length === SMALL_CHUNK_BYTES).length).toBe(1);

      // Hung up with their writes pending: the buffers are not reused, but no longer count as out.
      readers.forEach((r) => r.stream.destroy());
      await Promise.all(readers.map((r) => closed(r.stream)));
      const next = holding();
      await until(() => next.held.length === 1);
      next.stream.destroy();

      expect(next.held[0].length).toBe(READ_CHUNK_BYTES);
    });

    it('stops and closes the file when the client hangs up', async () => {
      const response = await request('/slow');
      const { stream, fd } = served.at(-1)!;
      await once(response, 'data');

      response.destroy();
      await closed(stream);

      expect(stream.destroyed).toBe(true);
      expect(stream.readableEnded).toBe(false);
      expect(isClosed(fd)).toBe(true);
    });
  });
});
