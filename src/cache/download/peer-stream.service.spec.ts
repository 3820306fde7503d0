import { Logger } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { PassThrough, Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { InstanceIdentity } from 'src/cluster';
import { Clock } from 'src/common/clock';
import { NCPS_CONFIG } from 'src/config/config.module';
import { NarDownloadRepository } from 'src/database';
import { testConfig } from 'test/support/config';
import { FakeClock } from 'test/support/fake-clock';
import { PeerCall, PeerGetOptions, PeerHttpClient, PeerResponse } from './peer-http.client';
import { PEER_INSTANCE_HEADER, PeerStreamService } from './peer-stream.service';

const KEY = 'nar/abc.nar';
const PEER = 'http://peer:8501';
const OTHER_PEER = 'http://other:8501';
const ME = { id: 'me', advertiseUrl: 'http://me:8501' };
const owner = (url: string, id?: string) => (id === undefined ? url : `${url}/_ncps/instance/${id}`);

/** A request the service made, and the means to answer it. */
interface FakeCall {
  url: string;
  options: PeerGetOptions;
  cancelled: boolean;
  answer(response: PeerResponse): void;
  fail(error: Error): void;
}

/** The peer client: records each request and leaves it unanswered until the test answers it. */
class FakePeerHttp implements PeerHttpClient {
  readonly calls: FakeCall[] = [];
  /** Answers every new request at once when set. */
  respond?: (call: FakeCall) => void;

  get(url: string, options: PeerGetOptions): PeerCall {
    let answered = false;
    let resolve!: (response: PeerResponse) => void;
    let reject!: (error: Error) => void;
    const response = new Promise<PeerResponse>((res, rej) => ((resolve = res), (reject = rej)));
    const call: FakeCall = {
      url,
      options,
      cancelled: false,
      answer: (r) => ((answered = true), resolve(r)),
      fail: reject,
    };
    this.calls.push(call);
    this.respond?.(call);
    return {
      response,
      cancel: () => {
        if (answered) return;
        call.cancelled = true;
        reject(new Error('socket hang up'));
      },
    };
  }
}

/** Announcements of downloads, by key, as the shared table would answer them. */
class FakeAnnouncements implements Pick<NarDownloadRepository, 'findActive'> {
  owner: string | null = null;
  /** The time of each lookup. */
  readonly askedAt: number[] = [];
  async findActive(key: string, now: number): ReturnType<NarDownloadRepository['findActive']> {
    this.askedAt.push(now);
    if (this.owner === null) return null;
    return { key, ownerUrl: this.owner, startedAt: now - 1_000, expiresAt: now + 60_000 };
  }
}

const ok = (bytes: string, contentLength?: number): PeerResponse => ({
  status: 200,
  contentLength,
  body: Readable.from([Buffer.from(bytes)]),
});

describe('PeerStreamService', () => {
  let http: FakePeerHttp;
  let announcements: FakeAnnouncements;
  let clock: FakeClock;
  let warn: jest.SpyInstance;
  let debug: jest.SpyInstance;
  let sut: PeerStreamService;

  async function build(flags: Record<string, unknown> = {}): Promise<PeerStreamService> {
    const identity: Pick<InstanceIdentity, 'id' | 'advertiseUrl'> = ME;
    const moduleRef = await Test.createTestingModule({
      providers: [
        PeerStreamService,
        { provide: NCPS_CONFIG, useValue: testConfig(flags) },
        { provide: NarDownloadRepository, useValue: announcements },
        { provide: InstanceIdentity, useValue: identity },
        { provide: PeerHttpClient, useValue: http },
        { provide: Clock, useValue: clock },
      ],
    }).compile();
    return moduleRef.get(PeerStreamService);
  }

  beforeEach(async () => {
    http = new FakePeerHttp();
    announcements = new FakeAnnouncements();
    clock = new FakeClock(1_000_000);
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    debug = jest.spyOn(Logger.prototype, 'debug').mockImplementation(() => undefined);
    sut = await build();
  });

  afterEach(() => jest.restoreAllMocks());

  describe('open', () => {
    it('asks nobody when no instance announced the download', async () => {
      await expect(sut.open(KEY)).resolves.toBeNull();
      expect(http.calls).toHaveLength(0);
      expect(announcements.askedAt).toEqual([1_000_000]);
    });

    it('streams from the announcing instance, asked for by its id, within the peer timeouts', async () => {
      announcements.owner = owner(PEER, 'peer-1');
      http.respond = (call) => call.answer(ok('bytes', 5));
      const body = await sut.open(KEY);
      expect(body).toMatchObject({ size: 5, ownerUrl: PEER });
      expect(await text(body!.stream)).toBe('bytes');
      expect(http.calls).toEqual([
        expect.objectContaining({
          url: `${PEER}/_ncps/downloads/${KEY}`,
          options: { headers: { [PEER_INSTANCE_HEADER]: 'peer-1' }, connectTimeoutMs: 1_000, answerTimeoutMs: 2_000 },
        }),
      ]);
      expect(warn).not.toHaveBeenCalled();
    });

    it('leaves the size unknown when the peer sent no length', async () => {
      announcements.owner = owner(PEER, 'peer-1');
      http.respond = (call) => call.answer(ok('bytes'));
      const body = await sut.open(KEY);
      expect(body).not.toBeNull();
      expect(body!.size).toBeUndefined();
    });

    it('presents the read token to the peer when one is set (the peer route is behind it too)', async () => {
      sut = await build({ 'cache-get-token': 'read-token' });
      announcements.owner = owner(PEER, 'peer-1');
      http.respond = (call) => call.answer(ok('x'));
      await sut.open(KEY);
      expect(http.calls[0].options.headers).toEqual({ authorization: 'Bearer read-token', [PEER_INSTANCE_HEADER]: 'peer-1' });
    });

    it('does not ask itself, recognised by its id whatever the URL', async () => {
      announcements.owner = owner(PEER, ME.id);
      await expect(sut.open(KEY)).resolves.toBeNull();
      expect(http.calls).toHaveLength(0);
    });

    it('recognises an id-less announcement (an older instance) by URL: its own is not asked, another is, without an id', async () => {
      announcements.owner = ME.advertiseUrl;
      await expect(sut.open(KEY)).resolves.toBeNull();
      expect(http.calls).toHaveLength(0);
      announcements.owner = PEER;
      http.respond = (call) => call.answer(ok('x'));
      await expect(sut.open(KEY)).resolves.not.toBeNull();
      expect(http.calls[0].options.headers).toEqual({});
    });

    it.each([404, 410, 500])(
      'does not use a peer that answers %p (no such download there), draining its answer quietly',
      async (status) => {
        announcements.owner = owner(PEER, 'peer-1');
        const body = new PassThrough();
        body.end('not found');
        http.respond = (call) => call.answer({ status, body });
        await expect(sut.open(KEY)).resolves.toBeNull();
        expect(body.readableFlowing).toBe(true); // resumed: the connection can be reused
        expect(warn).not.toHaveBeenCalled();
        expect(debug).toHaveBeenCalledWith(expect.objectContaining({ status }), 'peer has no such download; not streaming from it');
      },
    );

    it('does not use an instance that answers in the name of another (421), and warns once per peer', async () => {
      announcements.owner = owner(PEER, 'peer-1');
      http.respond = (call) => call.answer({ status: 421, body: Readable.from([]) });
      await expect(sut.open(KEY)).resolves.toBeNull();
      await expect(sut.open(KEY)).resolves.toBeNull();
      expect(warn).toHaveBeenCalledTimes(1);
      expect(warn).toHaveBeenCalledWith(
        expect.objectContaining({ owner: PEER, reason: 'another instance answers at its advertise URL' }),
        expect.any(String),
      );
    });

    it('gives up on a peer that cannot be reached or does not answer in time, warning once per peer', async () => {
      announcements.owner = owner(PEER, 'peer-1');
      http.respond = (call) => call.fail(new Error('no answer within 2000 ms'));
      await expect(sut.open(KEY)).resolves.toBeNull();
      await expect(sut.open(KEY)).resolves.toBeNull();
      expect(warn).toHaveBeenCalledTimes(1);
      expect(warn).toHaveBeenCalledWith(expect.objectContaining({ owner: PEER, reason: 'no answer within 2000 ms' }), expect.any(String));
      expect(debug).toHaveBeenCalledWith(expect.objectContaining({ reason: 'no answer within 2000 ms' }), expect.any(String));
      announcements.owner = owner(OTHER_PEER, 'peer-2');
      await expect(sut.open(KEY)).resolves.toBeNull();
      expect(warn).toHaveBeenCalledTimes(2);
    });

    it('hands over the peer body as it is: a peer hanging up mid-stream errors the stream its reader gets', async () => {
      announcements.owner = owner(PEER, 'peer-1');
      const body = new PassThrough();
      http.respond = (call) => call.answer({ status: 200, contentLength: 10, body });
      const peer = await sut.open(KEY);
      expect(peer!.stream).toBe(body);
      const read = text(peer!.stream);
      body.write('part');
      body.destroy(new Error('aborted'));
      await expect(read).rejects.toThrow('aborted');
    });
  });

  describe('waitForPeer', () => {
    /** A local download that never ends within a test: ended after each, so no polling outlives its test. */
    let never: Promise<void>;
    let endLocal: () => void;
    beforeEach(() => {
      never = new Promise<void>((r) => (endLocal = r));
    });
    afterEach(() => endLocal());

    it('gives up once the local download is done when no instance announced one', async () => {
      await expect(sut.waitForPeer(KEY, Promise.resolve())).resolves.toBeNull();
      expect(http.calls).toHaveLength(0);
    });

    it('streams from an instance that announces the download while it waits', async () => {
      http.respond = (call) => call.answer(ok('bytes', 5));
      const waiting = sut.waitForPeer(KEY, never);
      await clock.advance(50);
      expect(http.calls).toHaveLength(0);
      announcements.owner = owner(PEER, 'peer-1');
      await clock.advance(200);
      const body = await waiting;
      expect(body).toMatchObject({ size: 5, ownerUrl: PEER });
      expect(await text(body!.stream)).toBe('bytes');
    });

    it('asks an announcing instance once (a dead owner lingers until its row expires), then the next owner', async () => {
      announcements.owner = owner(PEER, 'peer-1');
      http.respond = (call) => (call.url.startsWith(PEER) ? call.fail(new Error('connect ECONNREFUSED')) : call.answer(ok('x')));
      const waiting = sut.waitForPeer(KEY, never);
      await clock.advance(500); // two polls at least
      expect(http.calls).toHaveLength(1);
      announcements.owner = owner(OTHER_PEER, 'peer-2');
      await clock.advance(200);
      await expect(waiting).resolves.toMatchObject({ ownerUrl: OTHER_PEER });
      expect(http.calls.map((c) => c.url)).toEqual([`${PEER}/_ncps/downloads/${KEY}`, `${OTHER_PEER}/_ncps/downloads/${KEY}`]);
    });

    it('does not ask itself while it waits', async () => {
      announcements.owner = owner(ME.advertiseUrl, ME.id);
      let done!: () => void;
      const waiting = sut.waitForPeer(KEY, new Promise<void>((r) => (done = r)));
      await clock.advance(250);
      done();
      await expect(waiting).resolves.toBeNull();
      expect(http.calls).toHaveLength(0);
    });

    it('looks for an announcement every 200 ms while it waits, and stops once the local download is ready', async () => {
      let ready!: () => void;
      const waiting = sut.waitForPeer(KEY, new Promise<void>((r) => (ready = r)));
      await clock.advance(199);
      expect(announcements.askedAt).toEqual([1_000_000]);
      await clock.advance(1);
      expect(announcements.askedAt).toEqual([1_000_000, 1_000_200]);

      ready();
      await expect(waiting).resolves.toBeNull();
      expect(clock.timers).toBe(0);
      await clock.advance(1_000);
      expect(announcements.askedAt).toHaveLength(2);
    });

    it('drops a request the peer has not answered once the local download is ready, without warning', async () => {
      announcements.owner = owner(PEER, 'peer-1');
      let ready!: () => void;
      const waiting = sut.waitForPeer(KEY, new Promise<void>((r) => (ready = r)));
      await clock.advance(10);
      expect(http.calls).toHaveLength(1);
      ready();
      await expect(waiting).resolves.toBeNull();
      expect(http.calls[0].cancelled).toBe(true);
      expect(warn).not.toHaveBeenCalled();
    });

    it('keeps a peer answer that arrived before the local download was ready', async () => {
      announcements.owner = owner(PEER, 'peer-1');
      let ready!: () => void;
      const waiting = sut.waitForPeer(KEY, new Promise<void>((r) => (ready = r)));
      await clock.advance(10);
      http.calls[0].answer(ok('bytes', 5));
      ready();
      await expect(waiting).resolves.toMatchObject({ ownerUrl: PEER });
      expect(http.calls[0].cancelled).toBe(false);
    });
  });
});
