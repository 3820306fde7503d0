import { PassThrough, Readable } from 'node:stream';
import { setImmediate } from 'node:timers/promises';
import { PayloadTooLargeError, RequestTimeoutError } from 'src/common/errors';
import { FakeClock } from 'test/support/fake-clock';
import { guardUpload } from './upload-guard';

async function drain(stream: Readable): Promise<number> {
  let n = 0;
  for await (const c of stream) n += (c as Buffer).length;
  return n;
}

describe('guardUpload', () => {
  let clock: FakeClock;
  beforeEach(() => (clock = new FakeClock()));

  it('passes a body within its limits through unchanged', async () => {
    const body = Readable.from([Buffer.alloc(600), Buffer.alloc(400)]);
    expect(await drain(guardUpload(body, { maxBytes: 1000, idleMs: 1000 }, clock))).toBe(1000);
  });

  it('fails with 413 at the byte past the cap, without destroying the request itself', async () => {
    const body = new PassThrough();
    const guarded = guardUpload(body, { maxBytes: 1000, idleMs: 1000 }, clock);
    body.write(Buffer.alloc(1000));
    body.write(Buffer.alloc(1));

    await expect(drain(guarded)).rejects.toBeInstanceOf(PayloadTooLargeError);
    expect(body.destroyed).toBe(false);
  });

  it('fails with 408 when the client sends nothing for the idle timeout, not before', async () => {
    const body = new PassThrough();
    const guarded = guardUpload(body, { maxBytes: 1e6, idleMs: 200 }, clock);
    const result = drain(guarded).catch((e: unknown) => e);
    for (let i = 0; i < 4; i++) {
      await clock.advance(199);
      body.write(Buffer.alloc(10));
      await setImmediate(); // taken by the guard
    }
    await clock.advance(199);
    expect(guarded.destroyed).toBe(false);

    await clock.advance(1);
    expect(await result).toBeInstanceOf(RequestTimeoutError);
    expect(body.destroyed).toBe(false);
  });

  it('does not count as silence the time its own reader leaves received bytes waiting', async () => {
    const body = new PassThrough();
    const guarded = guardUpload(body, { maxBytes: 1e6, idleMs: 200 }, clock);
    body.write(Buffer.alloc(100_000)); // more than the guard buffers: it waits for its reader
    await setImmediate();

    await clock.advance(1_000);
    expect(guarded.destroyed).toBe(false);

    const result = drain(guarded).catch((e: unknown) => e);
    await setImmediate();
    await clock.advance(200);
    expect(await result).toBeInstanceOf(RequestTimeoutError);
  });

  it('fails when the request fails (client hung up)', async () => {
    const body = new PassThrough();
    const guarded = guardUpload(body, { maxBytes: 1e6, idleMs: 1000 }, clock);
    body.destroy(new Error('aborted'));
    await expect(drain(guarded)).rejects.toThrow('aborted');
  });
});
