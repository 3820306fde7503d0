import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { meteredStream } from './metered-stream';

describe('meteredStream', () => {
  it('passes the bytes through unchanged and counts them', async () => {
    let counted = 0;
    const sut = meteredStream(Readable.from([Buffer.from('abc'), Buffer.from('defgh')]), (n) => (counted += n));
    const chunks: Buffer[] = [];
    for await (const chunk of sut) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('abcdefgh');
    expect(counted).toBe(8);
  });

  it('fails the reader when the source fails', async () => {
    const source = new Readable({ read() {} });
    const sut = meteredStream(source, () => undefined);
    sut.resume();
    source.destroy(new Error('upstream cut'));
    await expect(finished(sut)).rejects.toThrow('upstream cut');
  });

  it('stops the source when the reader goes away', async () => {
    const source = new Readable({ read() {} });
    const sut = meteredStream(source, () => undefined);
    sut.destroy();
    await expect(finished(source)).rejects.toMatchObject({ code: 'ERR_STREAM_PREMATURE_CLOSE' });
    expect(source.destroyed).toBe(true);
  });
});
