import { IncomingMessage, Server, ServerResponse } from 'node:http';
import { Socket } from 'node:net';

/** What is known of one open connection: the request it answers last, and how many are in flight. */
interface Connection {
  req?: IncomingMessage;
  res?: ServerResponse;
  /** More than one when the client pipelines. */
  inFlight: number;
}

/**
 * The server's open connections and the request each one is answering, for the idle timeout and for
 * the graceful close. One record per connection and one listener function for all responses: a
 * request allocates nothing here (a narinfo hit's own cost is of that order).
 */
export class Connections {
  private readonly open = new Map<Socket, Connection>();

  constructor(server: Server) {
    const open = this.open;
    const track = (socket: Socket): Connection => {
      const connection: Connection = { inFlight: 0 };
      open.set(socket, connection);
      socket.once('close', () => open.delete(socket));
      return connection;
    };
    function ended(this: ServerResponse): void {
      const connection = open.get(this.req.socket);
      if (!connection) return;
      connection.inFlight = Math.max(0, connection.inFlight - 1);
      if (connection.res === this) connection.req = connection.res = undefined;
    }
    server.on('connection', track);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const socket = req.socket;
      const connection = open.get(socket) ?? track(socket);
      connection.inFlight++;
      connection.req = req;
      connection.res = res;
      // 'close' comes once for every response, finished or not; `on` spares the wrapper `once` makes.
      res.on('close', ended);
    });
  }

  /** The request last received on `socket`, while its response has not closed. */
  answering(socket: Socket): IncomingMessage | undefined {
    return this.open.get(socket)?.req;
  }

  /** Connections open with no request in flight (kept alive, or never sent one). */
  idle(): Socket[] {
    const sockets: Socket[] = [];
    this.open.forEach((connection, socket) => connection.inFlight === 0 && sockets.push(socket));
    return sockets;
  }
}
