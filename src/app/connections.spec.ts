import { IncomingMessage, ServerResponse, createServer } from 'node:http';
import { AddressInfo, Socket, connect } from 'node:net';
import { once } from 'node:events';
import { Connections } from './connections';

/** A real server whose handler keeps each response open until the test ends it. */
async function serve() {
  const pending: { req: IncomingMessage; res: ServerResponse }[] = [];
  const arrived: (() => void)[] = [];
  const server = createServer((req, res) => {
    pending.push({ req, res });
    arrived.shift()?.();
  });
  const connections = new Connections(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const open = async (): Promise<Socket> => {
    const socket = connect(port, '127.0.0.1');
    await once(socket, 'connect');
    return socket;
  };
  const request = (socket: Socket, path: string) => {
    const next = new Promise<void>((resolve) => arrived.push(resolve));
    socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
    return next;
  };
  const until = async (check: () => boolean) => {
    while (!check()) await new Promise((resolve) => setTimeout(resolve, 5));
  };
  return { server, connections, pending, open, request, until };
}

describe('Connections', () => {
  it('counts a connection that never sent a request as idle, and forgets it once closed', async () => {
    const { server, connections, open, until } = await serve();
    const socket = await open();
    await until(() => connections.idle().length === 1);
    socket.destroy();
    await until(() => connections.idle().length === 0);
    server.close();
  });

  it('knows the request a connection answers until its response closes, then counts the connection idle', async () => {
    const { server, connections, pending, open, request, until } = await serve();
    const socket = await open();
    await request(socket, '/a');
    const [{ req, res }] = pending;
    const serverSide = req.socket;
    expect(connections.answering(serverSide)).toBe(req);
    expect(connections.idle()).toEqual([]);
    res.end('done');
    await until(() => connections.idle().length === 1);
    expect(connections.answering(serverSide)).toBeUndefined();
    socket.destroy();
    server.close();
  });

  it('counts a connection whose client hung up mid-response as closed, not busy', async () => {
    const { server, connections, pending, open, request, until } = await serve();
    const socket = await open();
    await request(socket, '/slow');
    pending[0].res.write('part');
    socket.destroy();
    await until(() => connections.idle().length === 0 && connections.answering(pending[0].req.socket) === undefined);
    server.close();
  });
});
