import { Inject, Injectable, Logger } from '@nestjs/common';
import { get as httpGet, IncomingMessage } from 'node:http';
import { get as httpsGet } from 'node:https';
import { Readable } from 'node:stream';
import { NCPS_CONFIG } from 'src/config/config.module';
import { NcpsConfig } from 'src/config/config';
import { NarDownloadRepository } from 'src/database';

/** Path prefix of the internal route that streams a download in progress to other instances. */
export const PEER_DOWNLOAD_PATH = '/_ncps/downloads';
const ANNOUNCE_POLL_MS = 200;
const CONNECT_TIMEOUT_MS = 2_000;

export interface PeerBody {
  stream: Readable;
  size?: number;
  ownerUrl: string;
}

/**
 * Streams a NAR that another instance is downloading, from that instance (ncps issue #660: a client
 * must not wait for the whole download on another replica). Instances find each other through
 * announcements in the shared database; a peer that cannot be reached is simply not used.
 */
@Injectable()
export class PeerStreamService {
  private readonly logger = new Logger(PeerStreamService.name);

  constructor(
    @Inject(NCPS_CONFIG) private readonly config: NcpsConfig,
    private readonly announcements: NarDownloadRepository,
  ) {}

  get selfUrl(): string {
    return this.config.server.advertiseUrl;
  }

  /** A stream of `key` from the instance that announced it is downloading it, or null. */
  async open(key: string): Promise<PeerBody | null> {
    const announced = await this.announcements.findActive(key, Date.now());
    if (!announced || announced.ownerUrl === this.selfUrl) return null;
    return this.request(announced.ownerUrl, key);
  }

  /**
   * Polls for another instance's announcement of `key` until `until` settles; resolves with a stream
   * from that instance, or null when `until` settled first.
   */
  async waitForPeer(key: string, until: Promise<unknown>): Promise<PeerBody | null> {
    let settled = false;
    void until.finally(() => (settled = true));
    const tried = new Set<string>();
    while (!settled) {
      const announced = await this.announcements.findActive(key, Date.now());
      if (announced && announced.ownerUrl !== this.selfUrl && !tried.has(announced.ownerUrl)) {
        tried.add(announced.ownerUrl); // a dead owner's row lingers until it expires: try it once
        const body = await this.request(announced.ownerUrl, key);
        if (body) return body;
      }
      await Promise.race([until, new Promise((r) => setTimeout(r, ANNOUNCE_POLL_MS))]);
    }
    return null;
  }

  private request(ownerUrl: string, key: string): Promise<PeerBody | null> {
    const url = `${ownerUrl}${PEER_DOWNLOAD_PATH}/${key}`;
    const headers: Record<string, string> = {};
    if (this.config.cache.getToken) headers.authorization = `Bearer ${this.config.cache.getToken}`;
    const get = url.startsWith('https:') ? httpsGet : httpGet;
    return new Promise((resolve) => {
      const req = get(url, { headers, timeout: CONNECT_TIMEOUT_MS }, (res: IncomingMessage) => {
        req.setTimeout(0);
        if (res.statusCode !== 200) {
          res.resume();
          return resolve(null);
        }
        const length = res.headers['content-length'];
        this.logger.log({ key, owner: ownerUrl }, 'streaming a download in progress on another instance');
        resolve({ stream: res, size: length === undefined ? undefined : Number(length), ownerUrl });
      });
      req.on('timeout', () => req.destroy(new Error('peer did not answer')));
      req.on('error', (e) => {
        this.logger.debug({ key, owner: ownerUrl, err: e.message }, 'peer unreachable; not streaming from it');
        resolve(null);
      });
    });
  }
}
