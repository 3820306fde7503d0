import { Inject, Injectable, Logger } from '@nestjs/common';
import { Readable } from 'node:stream';
import { InstanceIdentity, parseOwnerRef } from 'src/cluster';
import { Clock } from 'src/common/clock';
import { NCPS_CONFIG } from 'src/config/config.module';
import { NcpsConfig } from 'src/config/config';
import { NarDownloadRepository } from 'src/database';
import { PeerHttpClient } from './peer-http.client';

/** Path prefix of the internal route that streams a download in progress to other instances. */
export const PEER_DOWNLOAD_PATH = '/_ncps/downloads';
/** The id of the instance a peer request is meant for: any other instance answers 421 at once. */
export const PEER_INSTANCE_HEADER = 'x-ncps-instance';
const ANNOUNCE_POLL_MS = 200;
/** Peers are on the same network: one that does not accept a connection by then is not used. */
const CONNECT_TIMEOUT_MS = 1_000;
const ANSWER_TIMEOUT_MS = 2_000;

export interface PeerBody {
  stream: Readable;
  size?: number;
  ownerUrl: string;
}

interface PeerRequest {
  answer: Promise<PeerBody | null>;
  /** Gives up on a request not answered yet (an answered one keeps streaming). */
  cancel(): void;
}

/**
 * Streams a NAR that another instance is downloading, from that instance (the Go ncps fixed the same gap: a client
 * must not wait for the whole download on another replica). Instances find each other through
 * announcements in the shared database, each naming its owner's advertise URL and instance id; a peer
 * that cannot be reached, or answers as another instance, is not used: the client waits for the
 * download here instead.
 */
@Injectable()
export class PeerStreamService {
  private readonly logger = new Logger(PeerStreamService.name);
  /** Advertise URLs already warned about (once each: a dead or misconfigured peer is asked again and again). */
  private readonly warned = new Set<string>();

  constructor(
    @Inject(NCPS_CONFIG) private readonly config: NcpsConfig,
    private readonly announcements: NarDownloadRepository,
    private readonly identity: InstanceIdentity,
    private readonly http: PeerHttpClient,
    private readonly clock: Clock,
  ) {}

  /** A stream of `key` from the instance that announced it is downloading it, or null. */
  async open(key: string): Promise<PeerBody | null> {
    const announced = await this.announcements.findActive(key, this.clock.now());
    if (!announced || this.isSelf(announced.ownerUrl)) return null;
    return this.request(announced.ownerUrl, key).answer;
  }

  /**
   * Polls for another instance's announcement of `key` until `until` settles; resolves with a stream
   * from that instance, or null when `until` settled first (a request still unanswered then is dropped).
   */
  async waitForPeer(key: string, until: Promise<unknown>): Promise<PeerBody | null> {
    let settled = false;
    let pending: PeerRequest | undefined;
    const done = () => {
      settled = true;
      pending?.cancel();
    };
    until.then(done, done);
    const tried = new Set<string>();
    while (!settled) {
      const announced = await this.announcements.findActive(key, this.clock.now());
      if (!settled && announced && !this.isSelf(announced.ownerUrl) && !tried.has(announced.ownerUrl)) {
        tried.add(announced.ownerUrl); // a dead owner's row lingers until it expires: try it once
        pending = this.request(announced.ownerUrl, key);
        const body = await pending.answer;
        pending = undefined;
        if (body) return body;
      }
      let wake!: () => void;
      const polled = new Promise<void>((resolve) => (wake = resolve));
      const poll = this.clock.setTimeout(wake, ANNOUNCE_POLL_MS);
      await Promise.race([until, polled]);
      poll.cancel();
    }
    return null;
  }

  /** An announcement of this process (by id; an id-less one from an older instance, by URL). */
  private isSelf(owner: string): boolean {
    const { url, instanceId } = parseOwnerRef(owner);
    return instanceId === undefined ? url === this.identity.advertiseUrl : instanceId === this.identity.id;
  }

  private request(owner: string, key: string): PeerRequest {
    const { url: base, instanceId } = parseOwnerRef(owner);
    const headers: Record<string, string> = {};
    if (this.config.cache.getToken) headers.authorization = `Bearer ${this.config.cache.getToken}`;
    if (instanceId !== undefined) headers[PEER_INSTANCE_HEADER] = instanceId;
    let cancelled = false;
    const call = this.http.get(`${base}${PEER_DOWNLOAD_PATH}/${key}`, {
      headers,
      connectTimeoutMs: CONNECT_TIMEOUT_MS,
      answerTimeoutMs: ANSWER_TIMEOUT_MS,
    });
    const answer = call.response.then(
      ({ status, contentLength, body }): PeerBody | null => {
        if (status !== 200) {
          body.resume();
          if (status === 421) this.unreachable(base, key, 'another instance answers at its advertise URL');
          else this.logger.debug({ key, owner: base, status }, 'peer has no such download; not streaming from it');
          return null;
        }
        this.logger.log({ key, owner: base }, 'streaming a download in progress on another instance');
        return { stream: body, size: contentLength, ownerUrl: base };
      },
      (e: Error) => {
        // Not answered in time, refused, or an advertise URL Node cannot request; a cancelled request is no news.
        if (!cancelled) this.unreachable(base, key, e.message);
        return null;
      },
    );
    const cancel = () => {
      if (cancelled) return;
      cancelled = true;
      call.cancel();
    };
    return { answer, cancel };
  }

  private unreachable(owner: string, key: string, reason: string): void {
    if (this.warned.has(owner)) {
      this.logger.debug({ key, owner, reason }, 'peer unreachable; waiting for its download instead');
      return;
    }
    this.warned.add(owner);
    this.logger.warn({ key, owner, reason }, 'peer unreachable at its advertise URL; waiting for its download instead of streaming it');
  }
}
