import { BeforeApplicationShutdown, Inject, Injectable } from '@nestjs/common';
import { NCPS_CONFIG } from 'src/config/config.module';
import { NcpsConfig } from 'src/config/config';
import { Download } from './download';
import { waitAtMost } from 'src/common/deadline';

/**
 * The downloads running in this process, by storage key, so concurrent requests for one NAR share
 * one upstream fetch. An entry leaves when its download ends, successfully or not.
 */
@Injectable()
export class DownloadRegistry implements BeforeApplicationShutdown {
  private readonly running = new Map<string, Download>();

  constructor(@Inject(NCPS_CONFIG) private readonly config: NcpsConfig) {}

  /** Lets running downloads finish before the upstream connections and storage close (bounded). */
  async beforeApplicationShutdown(): Promise<void> {
    await waitAtMost(this.drain(), this.config.server.shutdownTimeoutMs);
  }

  get(key: string): Download | undefined {
    return this.running.get(key);
  }

  /** Registers a new download; `run` starts it. Returns the existing one if there is one. */
  getOrStart(key: string, create: () => Download, run: (d: Download) => Promise<void>): { download: Download; joined: boolean } {
    const existing = this.running.get(key);
    if (existing) return { download: existing, joined: true };
    const download = create();
    this.running.set(key, download);
    run(download)
      .catch(() => undefined) // the download records its error; readers and callers see it there
      .finally(() => {
        if (this.running.get(key) === download) this.running.delete(key);
      });
    return { download, joined: false };
  }

  size(): number {
    return this.running.size;
  }

  /** The downloads running now (for the status page). */
  list(): Download[] {
    return [...this.running.values()];
  }

  /** Resolves when every running download has ended (used on shutdown, bounded by the caller). */
  async drain(): Promise<void> {
    await Promise.all(
      [...this.running.values()].map(
        (d) =>
          new Promise((resolve) => {
            if (d.state === 'done' || d.state === 'failed') return resolve(undefined);
            d.once('done', resolve);
            d.once('failed', resolve);
          }),
      ),
    );
  }
}
