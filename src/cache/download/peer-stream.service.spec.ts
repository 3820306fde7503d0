import { once } from 'node:events';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { text } from 'node:stream/consumers';
import { InstanceIdentity } from 'src/cluster';
import { NcpsConfig } from 'src/config/config';
import { NarDownloadRepository } from 'src/database';
import { PEER_INSTANCE_HEADER, PeerStreamService } from './peer-stream.service';

const KEY = 'nar/abc.nar';

describe('PeerStreamService', () => {
  let server: Server;
  let peerUrl: string;
  let answer: (req: IncomingMessage, res: ServerResponse) => void;
  const seen: IncomingMessage[] = [];
  let announced: { ownerUrl: string } | null;

  const sut = () =>
    new PeerStreamService(
      { cache: {} } as NcpsConfig,
      { findActive: async () => announced } as unknown as NarDownloadRepository,
      { id: 'me', advertiseUrl: 'http://me:8501' } as InstanceIdentity,
    );

  beforeAll(async () => {
    server = createServer((req, res) => {
      seen.push(req);
      answer(req, res);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    peerUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  beforeEach(() => {
    seen.length = 0;
  });

  afterAll(async () => {
    server.closeAllConnections();
    server.close();
    await once(server, 'close');
  });

  it('streams from the announcing instance, asking for it by its id', async () => {
    announced = { ownerUrl: `${peerUrl}/_ncps/instance/peer-1` };
    answer = (_req, res) => res.writeHead(200, { 'content-length': 5 }).end('bytes');
    const body = await sut().open(KEY);
    expect(body).toMatchObject({ size: 5, ownerUrl: peerUrl });
    expect(await text(body!.stream)).toBe('bytes');
    expect(seen[0].url).toBe('/_ncps/downloads/nar/abc.nar');
    expect(seen[0].headers[PEER_INSTANCE_HEADER]).toBe('peer-1');
  });

  it('does not use an instance that answers in the name of another (421)', async () => {
    announced = { ownerUrl: `${peerUrl}/_ncps/instance/peer-1` };
    answer = (_req, res) => res.writeHead(421).end();
    await expect(sut().open(KEY)).resolves.toBeNull();
    expect(seen).toHaveLength(1);
  });

  it('does not ask itself, recognised by its id whatever the URL', async () => {
    announced = { ownerUrl: `${peerUrl}/_ncps/instance/me` };
    await expect(sut().open(KEY)).resolves.toBeNull();
    expect(seen).toHaveLength(0);
  });

  it('recognises an id-less announcement (an older instance) of its own URL', async () => {
    announced = { ownerUrl: 'http://me:8501' };
    await expect(sut().open(KEY)).resolves.toBeNull();
    announced = { ownerUrl: peerUrl };
    answer = (_req, res) => res.writeHead(200).end('x');
    await expect(sut().open(KEY)).resolves.not.toBeNull();
    expect(seen[0].headers[PEER_INSTANCE_HEADER]).toBeUndefined();
  });

  it('gives up on an unreachable peer', async () => {
    const closed = createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const { port } = closed.address() as AddressInfo;
    closed.close();
    await once(closed, 'close');
    announced = { ownerUrl: `http://127.0.0.1:${port}/_ncps/instance/peer-2` };
    await expect(sut().open(KEY)).resolves.toBeNull();
  });

  it('drops a request the peer has not answered once the local download is ready', async () => {
    announced = { ownerUrl: `${peerUrl}/_ncps/instance/peer-3` };
    let requested!: () => void;
    const asked = new Promise<void>((r) => (requested = r));
    answer = () => requested(); // never answers
    let ready!: () => void;
    const until = new Promise<void>((r) => (ready = r));
    const waiting = sut().waitForPeer(KEY, until);
    await asked;
    const closed = once(seen[0].socket, 'close');
    ready();
    await expect(waiting).resolves.toBeNull();
    await closed;
  }, 1_500); // shorter than the peer's 2 s answer timeout: a request left to time out fails this test
});
