import { PassThrough, Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { PayloadTooLargeError, RequestTimeoutError } from 'src/common/errors';
import { guardUpload } from './upload-guard';

async function drain(stream: Readable): Promise<number> {
  let n = 0;
  for await (const c of stream) n += (c as Buffer).length;
  return n;
}

describe('guardUpload', () => {
  it('passes a body within its limits through unchanged', async () => {
    const body = Readable.from([Buffer.alloc(600), Buffer.alloc(400)]);
    expect(await drain(guardUpload(body, { maxBytes: 1000, idleMs: 1000 }))).toBe(1000);
  });

  it('fails with 413 at the byte past the cap, without destroying the request itself', async () => {
    const body = new PassThrough();
    const guarded = guardUpload(body, { maxBytes: 1000, idleMs: 1000 });
    body.write(Buffer.alloc(1000));
    body.write(Buffer.alloc(1));

    await expect(drain(guarded)).rejects.toBeInstanceOf(PayloadTooLargeError);
    expect(body.destroyed).toBe(false);
  });

  it('fails with 408 when the client sends nothing for the idle timeout, not before', async () => {
    const body = new PassThrough();
    const guarded = guardUpload(body, { maxBytes: 1e6, idleMs: 200 });
    const result = drain(guarded).catch((e: unknown) => e);
    for (let i = 0; i < 4; i++) {
      await sleep(120);
      body.write(Buffer.alloc(10));
    }
    expect(guarded.destroyed).toBe(false);

    expect(await result).toBeInstanceOf(RequestTimeoutError);
    expect(body.destroyed).toBe(false);
  });

  it('fails when the request fails (client hung up)', async () => {
    const body = new PassThrough();
    const guarded = guardUpload(body, { maxBytes: 1e6, idleMs: 1000 });
    body.destroy(new Error('aborted'));
    await expect(drain(guarded)).rejects.toThrow('aborted');
  });
});
