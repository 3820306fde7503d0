import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { StoragePort, StoredObject } from 'src/storage/storage.port';
import { MiB, collect, digest, expectedBytes, expectedDigest, generated } from './storage.data';

export interface BrokenStorage {
  situation: string;
  /** Called inside the test, after `setup`. */
  make(): Promise<StoragePort>;
  /** What check()'s message must say. */
  message: RegExp;
  /** A credential that must never appear in the message. */
  secret?: string;
}

export interface StorageFixture {
  /** A provider on a fresh directory or bucket. */
  storage: StoragePort;
  /** Temporary files or multipart uploads still present; empty whenever no put is running. */
  leftovers(): Promise<string[]>;
  teardown(): Promise<void>;
}

/** Larger than one S3 part (8 MiB) twice over, so uploads are multipart with several parts. */
const LARGE = 20 * MiB + 12345;

async function toArray(objects: AsyncIterable<StoredObject>): Promise<StoredObject[]> {
  const all: StoredObject[] = [];
  for await (const object of objects) all.push(object);
  return all.sort((a, b) => a.key.localeCompare(b.key));
}

/**
 * The StoragePort contract (see storage.port.ts), run against every provider. Each test works under
 * its own key prefix, so tests never see each other's objects even though they share one provider.
 */
export function describeStorageConformance(name: string, setup: () => Promise<StorageFixture>, broken: BrokenStorage[]): void {
  describe(`StoragePort conformance: ${name}`, () => {
    let fixture: StorageFixture;
    let sut: StoragePort;
    let ns: string;

    beforeAll(async () => {
      fixture = await setup();
      sut = fixture.storage;
    });
    afterAll(async () => {
      await sut.close();
      await fixture.teardown();
    });
    beforeEach(() => {
      ns = `t-${randomBytes(6).toString('hex')}`;
    });

    it('round-trips a multi-MB streamed object (put, head, read)', async () => {
      const key = `${ns}/nar/object.nar.xz`;
      const expected = await expectedDigest('round-trip', LARGE);

      const put = await sut.put(key, generated('round-trip', LARGE));

      expect(put).toEqual({ size: LARGE, created: true });
      expect(await sut.head(key)).toEqual({ key, size: LARGE });
      expect(await digest((await sut.read(key))!)).toEqual(expected);
      expect(await fixture.leftovers()).toEqual([]);
    });

    it('stores an empty object', async () => {
      const key = `${ns}/empty`;

      expect(await sut.put(key, Readable.from([]))).toEqual({ size: 0, created: true });

      expect(await sut.head(key)).toEqual({ key, size: 0 });
      expect((await collect((await sut.read(key))!)).length).toBe(0);
    });

    describe('Range reads', () => {
      const key = 'range/object.nar';
      beforeAll(async () => {
        await sut.put(key, generated('range', LARGE));
      });

      it.each([
        ['the first byte', 0, 0],
        ['a slice from the middle', 1_000_000, 1_000_999],
        ['a slice across a part boundary', 8 * MiB - 10, 8 * MiB + 10],
        ['the last byte', LARGE - 1, LARGE - 1],
      ])('returns exactly %s', async (_label, start, end) => {
        const bytes = await collect((await sut.read(key, { start, end }))!);

        expect(bytes.length).toBe(end - start + 1);
        expect(bytes.equals(await expectedBytes('range', start, end))).toBe(true);
      });

      it('returns the whole object for 0..size-1', async () => {
        expect(await digest((await sut.read(key, { start: 0, end: LARGE - 1 }))!)).toEqual(await expectedDigest('range', LARGE));
      });

      it('clamps an end past the end of the object, as HTTP does', async () => {
        const bytes = await collect((await sut.read(key, { start: LARGE - 5, end: LARGE + 100 }))!);

        expect(bytes.equals(await expectedBytes('range', LARGE - 5, LARGE - 1))).toBe(true);
      });

      it('rejects a range starting past the end, and malformed ranges, with a RangeError', async () => {
        await expect(sut.read(key, { start: LARGE, end: LARGE + 10 })).rejects.toThrow(RangeError);
        await expect(sut.read(key, { start: 10, end: 5 })).rejects.toThrow(RangeError);
        await expect(sut.read(key, { start: -1, end: 5 })).rejects.toThrow(RangeError);
      });
    });

    describe('openRead', () => {
      const key = 'open-read/object.nar';
      beforeAll(async () => {
        await sut.put(key, generated('open-read', LARGE));
      });

      it('tells the size and streams the whole object', async () => {
        const sizes: number[] = [];
        const whole = await sut.openRead(key);
        const chosen = await sut.openRead(key, (size) => {
          sizes.push(size);
          return undefined;
        });

        expect(whole && { size: whole.size, range: whole.range }).toEqual({ size: LARGE, range: undefined });
        expect(await digest(whole!.stream)).toEqual(await expectedDigest('open-read', LARGE));
        expect(sizes).toEqual([LARGE]);
        expect(chosen && { size: chosen.size, range: chosen.range }).toEqual({ size: LARGE, range: undefined });
        expect(await digest(chosen!.stream)).toEqual(await expectedDigest('open-read', LARGE));
      });

      it('streams the range chosen from the size, its end clamped to the object', async () => {
        const tail = await sut.openRead(key, (size) => ({ start: size - 1_000_000, end: size - 1 }));
        const pastEnd = await sut.openRead(key, (size) => ({ start: size - 5, end: size + 100 }));

        expect(tail && { size: tail.size, range: tail.range }).toEqual({
          size: LARGE,
          range: { start: LARGE - 1_000_000, end: LARGE - 1 },
        });
        expect((await collect(tail!.stream)).equals(await expectedBytes('open-read', LARGE - 1_000_000, LARGE - 1))).toBe(true);
        expect(pastEnd!.range).toEqual({ start: LARGE - 5, end: LARGE - 1 });
        expect((await collect(pastEnd!.stream)).equals(await expectedBytes('open-read', LARGE - 5, LARGE - 1))).toBe(true);
      });

      it('rejects a chosen range starting past the end, and malformed ones, with a RangeError', async () => {
        await expect(sut.openRead(key, (size) => ({ start: size, end: size + 10 }))).rejects.toThrow(RangeError);
        await expect(sut.openRead(key, () => ({ start: 10, end: 5 }))).rejects.toThrow(RangeError);
      });

      it('opens an empty object', async () => {
        const empty = `${ns}/empty-open`;
        await sut.put(empty, Readable.from([]));

        const opened = await sut.openRead(empty);

        expect(opened!.size).toBe(0);
        expect((await collect(opened!.stream)).length).toBe(0);
      });

      it('answers null for a missing object, without asking for a range', async () => {
        const pickRange = jest.fn(() => undefined);

        expect(await sut.openRead(`${ns}/missing.nar`)).toBeNull();
        expect(await sut.openRead(`${ns}/missing.nar`, pickRange)).toBeNull();
        expect(pickRange).not.toHaveBeenCalled();
      });
    });

    it('answers null/false for a missing object', async () => {
      const key = `${ns}/missing.nar`;

      expect(await sut.head(key)).toBeNull();
      expect(await sut.read(key)).toBeNull();
      expect(await sut.read(key, { start: 0, end: 10 })).toBeNull();
      expect(await sut.delete(key)).toBe(false);
    });

    it('stores a finished file with putFile, leaving the file in place, and keeps an existing object', async () => {
      const key = `${ns}/nar/from-file.nar`;
      const dir = await mkdtemp(join(tmpdir(), 'ncps-put-file-'));
      try {
        const file = join(dir, 'download.tmp');
        await pipeline(generated('from-file', 3 * MiB), createWriteStream(file));

        expect(await sut.putFile(key, file)).toEqual({ size: 3 * MiB, created: true });
        expect(await sut.head(key)).toEqual({ key, size: 3 * MiB });
        expect(await digest((await sut.read(key))!)).toEqual(await expectedDigest('from-file', 3 * MiB));
        expect((await stat(file)).size).toBe(3 * MiB);

        const second = join(dir, 'second.tmp');
        await writeFile(second, 'other bytes');
        expect(await sut.putFile(key, second)).toEqual({ size: 3 * MiB, created: false });
        expect(await digest((await sut.read(key))!)).toEqual(await expectedDigest('from-file', 3 * MiB));
        expect(await fixture.leftovers()).toEqual([]);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it('keeps an existing object, drains the new source and reports created:false', async () => {
      const key = `${ns}/kept`;
      await sut.put(key, generated('kept', 3 * MiB));
      const source = generated('kept', 3 * MiB);

      const put = await sut.put(key, source);

      expect(put).toEqual({ size: 3 * MiB, created: false });
      expect(source.readableEnded).toBe(true);
      expect(await digest((await sut.read(key))!)).toEqual(await expectedDigest('kept', 3 * MiB));
    });

    it('lets 5 concurrent writers of one key end with one correct object and no error', async () => {
      const key = `${ns}/contended.nar`;
      const size = 9 * MiB;

      const results = await Promise.all(Array.from({ length: 5 }, () => sut.put(key, generated('contended', size))));

      for (const result of results) expect(result.size).toBe(size);
      expect(results.some((result) => result.created)).toBe(true);
      expect(await toArray(sut.list(`${ns}/`))).toEqual([{ key, size }]);
      expect(await digest((await sut.read(key))!)).toEqual(await expectedDigest('contended', size));
      expect(await fixture.leftovers()).toEqual([]);
    });

    it('never shows a reader a partial object while it is being written', async () => {
      const key = `${ns}/in-flight.nar`;
      const whole = await expectedDigest('in-flight', LARGE);
      let writing = true;
      const put = sut.put(key, generated('in-flight', LARGE, { delayMs: 2 })).finally(() => (writing = false));

      const seen: string[] = [];
      while (writing) {
        const stream = await sut.read(key);
        seen.push(stream ? ((await digest(stream)).sha256 === whole.sha256 ? 'whole' : 'PARTIAL') : 'none');
      }
      await put;
      const after = await sut.read(key);

      expect(seen).not.toContain('PARTIAL');
      expect(seen).toContain('none');
      expect(await digest(after!)).toEqual(whole);
    });

    it.each([
      ['before the first part is full', 1 * MiB],
      ['after several parts were sent', 18 * MiB],
    ])('leaves nothing behind when the source fails %s', async (_label, failAfter) => {
      const key = `${ns}/failed.nar`;

      await expect(sut.put(key, generated('failed', LARGE, { failAfter }))).rejects.toThrow(/failed on purpose/);

      expect(await sut.head(key)).toBeNull();
      expect(await sut.read(key)).toBeNull();
      expect(await toArray(sut.list(`${ns}/`))).toEqual([]);
      expect(await fixture.leftovers()).toEqual([]);
    });

    it('lists by prefix, mapping back to the keys that were put', async () => {
      const keys = [`${ns}/a/one`, `${ns}/a/two.nar.xz`, `${ns}/ab/three`, `${ns}/b/four`, `${ns}/five`];
      for (const [index, key] of keys.entries()) await sut.put(key, generated(key, 100 + index));
      const listed = async (prefix: string) => (await toArray(sut.list(prefix))).map((o) => o.key);

      expect(await toArray(sut.list(`${ns}/a/`))).toEqual([
        { key: `${ns}/a/one`, size: 100 },
        { key: `${ns}/a/two.nar.xz`, size: 101 },
      ]);
      expect(await listed(`${ns}/a`)).toEqual([`${ns}/a/one`, `${ns}/a/two.nar.xz`, `${ns}/ab/three`]);
      expect(await listed(`${ns}/a/t`)).toEqual([`${ns}/a/two.nar.xz`]);
      expect(await listed(`${ns}/`)).toEqual([...keys].sort());
      expect(await listed(`${ns}/nothing/`)).toEqual([]);
      expect(await listed('')).toEqual(expect.arrayContaining(keys));
    });

    it('deletes an object once', async () => {
      const key = `${ns}/doomed`;
      await sut.put(key, generated('doomed', 1000));

      expect(await sut.delete(key)).toBe(true);

      expect(await sut.head(key)).toBeNull();
      expect(await sut.read(key)).toBeNull();
      expect(await sut.delete(key)).toBe(false);
    });

    it('passes check() when healthy', async () => {
      await expect(sut.check()).resolves.toBeUndefined();
      expect(await fixture.leftovers()).toEqual([]);
    });

    it.each(broken.map((situation) => [situation.situation, situation] as const))(
      'fails check() with an explanation: %s',
      async (_label, situation) => {
        const storage = await situation.make();
        try {
          const error: unknown = await storage.check().then(
            () => new Error('check() passed'),
            (e: unknown) => e,
          );
          expect(error).toBeInstanceOf(Error);
          expect((error as Error).message).toMatch(situation.message);
          if (situation.secret) expect((error as Error).message).not.toContain(situation.secret);
        } finally {
          await storage.close();
        }
      },
    );

    it.each(['', '../escape', '/absolute', 'a/../b', 'a//b', '.hidden', 'a/./b', 'a b', 'a\\b', 'nar/'])(
      'rejects the unsafe key %j',
      async (key) => {
        const source = generated('unsafe', 10);

        await expect(sut.put(key, source)).rejects.toThrow(/unsafe storage key/);
        await expect(sut.head(key)).rejects.toThrow(/unsafe storage key/);
        await expect(sut.read(key)).rejects.toThrow(/unsafe storage key/);
        await expect(sut.delete(key)).rejects.toThrow(/unsafe storage key/);
        source.destroy();
      },
    );

    it('rejects a prefix that could escape the root', async () => {
      await expect(toArray(sut.list('../'))).rejects.toThrow(/unsafe storage prefix/);
      await expect(toArray(sut.list('/etc'))).rejects.toThrow(/unsafe storage prefix/);
    });
  });
}
