import { once } from 'node:events';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo, createServer as createTcpServer } from 'node:net';
import { text } from 'node:stream/consumers';
import { UndiciPeerHttpClient, PeerGetOptions } from './peer-http.client';

const OPTIONS: PeerGetOptions = { headers: { 'x-ncps-instance': 'peer-1' }, connectTimeoutMs: 1_000, answerTimeoutMs: 2_000 };

/** UndiciPeerHttpClient against a real loopback server. */
describe('UndiciPeerHttpClient', () => {
  const sut = new UndiciPeerHttpClient();
  let server: Server;
  let base: string;
  let answer: (req: IncomingMessage, res: ServerResponse) => void;
  const seen: IncomingMessage[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      seen.push(req);
      answer(req, res);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  beforeEach(() => {
    seen.length = 0;
  });

  afterAll(async () => {
    server.closeAllConnections();
    server.close();
    await once(server, 'close');
  });

  it('sends the headers it is given and hands over status, length and body', async () => {
    answer = (_req, res) => res.writeHead(200, { 'content-length': 5 }).end('bytes');
    const { response } = sut.get(`${base}/_ncps/downloads/nar/abc.nar`, OPTIONS);
    const { status, contentLength, body } = await response;
    expect({ status, contentLength }).toEqual({ status: 200, contentLength: 5 });
    expect(await text(body)).toBe('bytes');
    expect(seen[0].url).toBe('/_ncps/downloads/nar/abc.nar');
    expect(seen[0].headers['x-ncps-instance']).toBe('peer-1');
  });

  it('hands over any other status as an answer, without a length when none was sent', async () => {
    answer = (_req, res) => {
      res.writeHead(404);
      res.write('not ');
      res.end('here');
    };
    const { status, contentLength, body } = await sut.get(`${base}/x`, OPTIONS).response;
    expect({ status, contentLength }).toEqual({ status: 404, contentLength: undefined });
    body.resume();
  });

  it('rejects when nothing listens at the URL', async () => {
    const closed = createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const { port } = closed.address() as AddressInfo;
    closed.close();
    await once(closed, 'close');
    await expect(sut.get(`http://127.0.0.1:${port}/x`, OPTIONS).response).rejects.toThrow(/ECONNREFUSED/);
  });

  it('rejects a URL Node cannot request', async () => {
    await expect(sut.get('http://bad host/x', OPTIONS).response).rejects.toThrow();
  });

  it('gives up when the answer does not come in time, closing the connection', async () => {
    answer = () => undefined; // never answers
    const { response } = sut.get(`${base}/x`, { ...OPTIONS, answerTimeoutMs: 100 });
    await expect(response).rejects.toThrow('no answer within 100 ms');
    const { socket } = seen[0];
    if (!socket.destroyed) await once(socket, 'close');
    expect(socket.destroyed).toBe(true);
  });

  it('lets the body take longer than the answer timeout once the head arrived', async () => {
    answer = (_req, res) => {
      res.writeHead(200);
      res.write('slow ');
      setTimeout(() => res.end('body'), 250);
    };
    const { body } = await sut.get(`${base}/x`, { ...OPTIONS, answerTimeoutMs: 100 }).response;
    expect(await text(body)).toBe('slow body');
  });

  it('drops a request not answered yet on cancel', async () => {
    let asked!: () => void;
    const requested = new Promise<void>((r) => (asked = r));
    answer = () => asked();
    const call = sut.get(`${base}/x`, OPTIONS);
    await requested;
    const closed = once(seen[0].socket, 'close');
    call.cancel();
    await expect(call.response).rejects.toThrow();
    await closed;
  }, 1_500); // shorter than the answer timeout: a request left to time out fails this test

  it('leaves an answered request streaming on cancel', async () => {
    answer = (_req, res) => {
      res.writeHead(200);
      res.write('first ');
      setTimeout(() => res.end('second'), 50);
    };
    const call = sut.get(`${base}/x`, OPTIONS);
    const { body } = await call.response;
    call.cancel();
    expect(await text(body)).toBe('first second');
  });

  it('errors the body, rather than ending it, when the peer hangs up mid-stream', async () => {
    answer = (_req, res) => {
      res.writeHead(200, { 'content-length': 100 });
      res.write('part');
      setTimeout(() => res.destroy(), 20);
    };
    const { body } = await sut.get(`${base}/x`, OPTIONS).response;
    await expect(text(body)).rejects.toThrow(/closed|aborted/);
  });

  it('speaks TLS to an https URL', async () => {
    const tcp = createTcpServer();
    const firstByte = new Promise<number>((resolve) =>
      tcp.on('connection', (socket) => socket.once('data', (d: Buffer) => (resolve(d[0]), socket.destroy()))),
    );
    tcp.listen(0, '127.0.0.1');
    await once(tcp, 'listening');
    const { port } = tcp.address() as AddressInfo;
    const call = sut.get(`https://127.0.0.1:${port}/x`, OPTIONS);
    expect(await firstByte).toBe(0x16); // a TLS handshake record
    await expect(call.response).rejects.toThrow();
    tcp.close();
    await once(tcp, 'close');
  });
});
