import { FileHandle, open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { Download } from './download';

const CHUNK = 256 * 1024;

/**
 * A stream of a download's bytes from `start`, read from its temp file as they arrive. It ends
 * when the download is verified and committed, and errors if the download fails — so a client is
 * never told a truncated or tampered file was whole.
 */
export function tailDownload(download: Download, start = 0, end = Infinity): Readable {
  const release = download.attach();
  let handle: FileHandle | undefined;
  let position = start;
  const last = end; // inclusive

  const waitForProgress = () =>
    new Promise<void>((resolve) => {
      download.once('progress', resolve);
    });

  const stream = new Readable({
    highWaterMark: CHUNK,
    read() {
      void pump();
    },
    destroy(err, callback) {
      void (async () => {
        await handle?.close().catch(() => undefined);
        await release();
        callback(err);
      })();
    },
  });

  let pumping = false;
  async function pump(): Promise<void> {
    if (pumping) return;
    pumping = true;
    try {
      for (;;) {
        if (download.state === 'failed') {
          stream.destroy(download.error ?? new Error('download failed'));
          return;
        }
        // The final byte is held back until the download is verified and committed: a client
        // that knows the length must not receive a whole (but wrong) file before we know it is right.
        const verified = download.state === 'done';
        const available = Math.min(verified ? download.written : download.written - 1, last + 1);
        if (position < available) {
          handle ??= await open(download.path, 'r');
          const length = Math.min(CHUNK, available - position);
          const buffer = Buffer.allocUnsafe(length);
          const { bytesRead } = await handle.read(buffer, 0, length, position);
          position += bytesRead;
          if (!stream.push(buffer.subarray(0, bytesRead))) return;
          continue;
        }
        if (download.state === 'done' || position > last) {
          stream.push(null);
          return;
        }
        await waitForProgress();
      }
    } catch (e) {
      stream.destroy(e as Error);
    } finally {
      pumping = false;
    }
  }

  stream.on('end', () => void release());
  return stream;
}
