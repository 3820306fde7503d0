import { once } from 'node:events';
import { IncomingMessage, Server, ServerResponse, createServer } from 'node:http';
import { AddressInfo } from 'node:net';
import { FrontExchange, FrontRoute, frontDoorOf, frontDoorServer, idGivenAtDoor } from './front-door';

const SETTINGS = { keepAliveTimeout: 72_000, requestTimeout: 0, connectionTimeout: 0, maxRequestsPerSocket: 0 };

/** Fastify's place: answers 'inner' to whatever the door leaves it, and remembers what it got. */
function inner(): { handler: (req: IncomingMessage, res: ServerResponse) => void; got: string[]; ids: (string | undefined)[] } {
  const got: string[] = [];
  const ids: (string | undefined)[] = [];
  return {
    got,
    ids,
    handler: (req, res) => {
      got.push(`${req.method} ${req.url}`);
      ids.push(idGivenAtDoor(req));
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'text/plain' }).end('inner'));
    },
  };
}

/** A route taking `/hit/<key>`, answering keys that start with 'a', null for 'n', failing for 'f'; `ids` are the ids it was given. */
function route(taken: string[], ids: string[] = []): FrontRoute {
  return {
    pattern: '/hit/:key',
    take: (req) => {
      const key = req.url?.startsWith('/hit/') ? req.url.slice('/hit/'.length) : undefined;
      if (key !== undefined) taken.push(key);
      return key;
    },
    answer: async (key, _res, id) => {
      ids.push(id);
      if (key.startsWith('f')) throw new Error('lookup failed');
      return key.startsWith('a') ? { type: 'text/x-test', body: Buffer.from(`answer ${key}`) } : null;
    },
  };
}

describe('FrontDoor', () => {
  let sut: Server;
  let url: string;
  let fastify: ReturnType<typeof inner>;
  let taken: string[];
  let observed: FrontExchange[];

  beforeEach(async () => {
    fastify = inner();
    taken = [];
    observed = [];
    let ids = 0;
    sut = frontDoorServer(fastify.handler, SETTINGS, (req) => String(req.headers['x-request-id'] ?? `id-${++ids}`));
    frontDoorOf(sut)!.route(route(taken));
    frontDoorOf(sut)!.observe((exchange) => observed.push(exchange));
    sut.listen(0, '127.0.0.1');
    await once(sut, 'listening');
    url = `http://127.0.0.1:${(sut.address() as AddressInfo).port}`;
  });
  afterEach(async () => {
    sut.closeAllConnections();
    sut.close();
    await once(sut, 'close');
  });

  const get = async (path: string, init: RequestInit = {}) => {
    const res = await fetch(`${url}${path}`, init);
    return {
      status: res.status,
      text: await res.text(),
      type: res.headers.get('content-type'),
      length: res.headers.get('content-length'),
      id: res.headers.get('x-request-id'),
    };
  };

  it('answers what a route has at hand without Fastify, with a request id, and tells the observers once the response closed', async () => {
    expect(await get('/hit/a1', { headers: { 'x-request-id': 'given' } })).toEqual({
      status: 200,
      text: 'answer a1',
      type: 'text/x-test',
      length: '9',
      id: 'given',
    });
    expect(await get('/hit/a2')).toMatchObject({ status: 200, text: 'answer a2', id: 'id-1' });
    expect(fastify.got).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(
      observed.map((e) => [e.id, e.req.url, e.route.pattern, e.res.writableFinished, e.answer.body.toString(), typeof e.started]),
    ).toEqual([
      ['given', '/hit/a1', '/hit/:key', true, 'answer a1', 'bigint'],
      ['id-1', '/hit/a2', '/hit/:key', true, 'answer a2', 'bigint'],
    ]);
  });

  it('tells the observers of a client that hung up while its answer was looked up', async () => {
    let answered!: () => void;
    const slow = new Promise<void>((resolve) => (answered = resolve));
    frontDoorOf(sut)!.route({
      pattern: '/slow',
      take: (req) => (req.url === '/slow' ? 'slow' : undefined),
      answer: async () => {
        await slow;
        return { type: 'text/x-test', body: Buffer.from('late') };
      },
    });
    const client = new AbortController();
    const request = fetch(`${url}/slow`, { signal: client.signal }).catch(() => 'aborted');
    await new Promise((resolve) => setTimeout(resolve, 20));
    client.abort();
    expect(await request).toBe('aborted');
    await new Promise((resolve) => setTimeout(resolve, 20));
    answered();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(observed.map((e) => [e.req.url, e.res.writableFinished])).toEqual([['/slow', false]]);
  });

  it('hands Fastify what no route takes, what a route has not (null), and what it failed on', async () => {
    for (const path of ['/other', '/hit/n1', '/hit/f1']) expect(await get(path)).toMatchObject({ status: 200, text: 'inner' });
    expect(taken).toEqual(['n1', 'f1']);
    expect(fastify.got).toEqual(['GET /other', 'GET /hit/n1', 'GET /hit/f1']);
    expect(observed).toEqual([]);
  });

  it('hands a request on with the id its route was given (for Fastify to keep); one no route took has none', async () => {
    const given: string[] = [];
    const door = frontDoorOf(sut)!;
    // A route of its own, to see the ids it is given; each test's server counts fresh ids from 1.
    door.route({ ...route([], given), pattern: '/ids/:key', take: (req) => (req.url?.startsWith('/ids/') ? req.url.slice(5) : undefined) });
    await get('/ids/n1');
    await get('/ids/f1', { headers: { 'x-request-id': 'given' } });
    await get('/other');
    expect(given).toEqual(['id-1', 'given']);
    expect(fastify.ids).toEqual(['id-1', 'given', undefined]);
  });

  it('leaves a request with a body to Fastify, without asking the routes', async () => {
    expect(await get('/hit/a1', { method: 'POST', body: 'x' })).toMatchObject({ text: 'inner' });
    expect(taken).toEqual([]);
    expect(fastify.got).toEqual(['POST /hit/a1']);
  });

  it('once shut, hands Fastify everything', async () => {
    frontDoorOf(sut)!.shut();
    expect(await get('/hit/a1')).toMatchObject({ text: 'inner' });
    expect(taken).toEqual([]);
  });

  it('is set up as Fastify sets up its own server, and is the door of its server only', () => {
    const made = frontDoorServer(
      fastify.handler,
      { ...SETTINGS, keepAliveTimeout: 5_000, requestTimeout: 7_000, maxRequestsPerSocket: 3 },
      () => 'id',
    );
    expect([made.keepAliveTimeout, made.requestTimeout, made.maxRequestsPerSocket]).toEqual([5_000, 7_000, 3]);
    expect(frontDoorOf(made)).toBeDefined();
    expect(frontDoorOf(made)).not.toBe(frontDoorOf(sut));
    expect(frontDoorOf(createServer())).toBeUndefined();
    expect(frontDoorOf(undefined)).toBeUndefined();
  });
});
