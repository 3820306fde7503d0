import fastify, { FastifyInstance } from 'fastify';
import { IncomingMessage, ServerResponse, request } from 'node:http';
import { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { storage } from 'nestjs-pino/storage';
import pino from 'pino';
import { buildConfig } from 'src/config/build-config';
import { resolveOptions } from 'src/config/resolve';
import { ServerSettings, frontDoorOf, frontDoorServer } from 'src/common/front-door';
import { loggerOptions } from './logger.options';
import { RequestContexts, logRequests } from './request-logging';

type Line = Record<string, unknown> & { level: string; msg: string };

/** A server whose requests are logged as `ncps serve` logs them at `level`, into `lines`. */
function serverAt(level: string): { server: FastifyInstance; lines: Line[] } {
  const config = buildConfig(
    resolveOptions({ flags: { 'cache-upstream-url': [], 'log-level': level, 'cache-get-token': 'token-value-123' }, env: {} }),
    {
      hostname: 'box',
      tempDir: '/tmp',
      homeDir: '/home/u',
    },
  );
  const { customLogLevel, customSuccessMessage, customErrorMessage, autoLogging, ...options } = loggerOptions(config, {
    tty: false,
  }).pinoHttp;
  const lines: Line[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()) as Line);
      done();
    },
  });
  const requestId = (req: IncomingMessage) => String(req.headers['x-request-id'] ?? 'generated');
  const server = fastify({
    genReqId: requestId,
    serverFactory: (handler, settings) => frontDoorServer(handler, settings as unknown as ServerSettings, requestId),
  });
  // Answered before Fastify, as narinfo hits are.
  const door = frontDoorOf(server.server)!;
  door.route({
    pattern: '/front',
    take: (req) => (req.url === '/front' ? 'key' : undefined),
    answer: async () => ({ type: 'text/plain', body: Buffer.from('fine') }),
  });
  const root = pino(options, sink);
  const contexts = new RequestContexts(root);
  logRequests(server, root, contexts, { customLogLevel, customSuccessMessage, customErrorMessage, autoLogging }, door);
  server.get('/ok', async (_req, reply) => reply.send('fine'));
  server.get('/healthz', async (_req, reply) => reply.send('ok'));
  server.get('/missing', async (_req, reply) => reply.code(404).send('no'));
  server.get('/broken', async (_req, reply) => reply.code(500).send('oops'));
  server.get('/health', async (_req, reply) => reply.code(503).send('down'));
  server.get('/inside', async (_req, reply) => {
    storage.getStore()?.logger.warn({ hash: 'abc' }, 'something happened');
    return reply.send('done');
  });
  // Routes that enter their context themselves: only where they may log.
  server.get('/own/quiet', { config: { ownLogContext: true } }, async (_req, reply) => {
    storage.getStore()?.logger.warn('no context here');
    return reply.send('done');
  });
  server.get('/own/logging', { config: { ownLogContext: true } }, async (request, reply) => {
    await contexts.run(request, reply, async () => storage.getStore()?.logger.warn('in context'));
    return reply.send('done');
  });
  server.get('/slow', (_req, reply) => {
    reply.raw.writeHead(200, { 'content-type': 'text/plain' });
    reply.raw.write('first bytes');
  });
  return { server, lines };
}

let running: FastifyInstance | undefined;
async function listening(level: string): Promise<{ server: FastifyInstance; lines: Line[] }> {
  const made = serverAt(level);
  await made.server.listen({ port: 0, host: '127.0.0.1' });
  running = made.server;
  return made;
}

/** GETs `path` from the server (listening on a real socket: responses then finish as they do in service). */
async function get(server: FastifyInstance, path: string, headers: Record<string, string> = {}): Promise<void> {
  const { port } = server.server.address() as AddressInfo;
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { headers });
  await res.arrayBuffer();
}

/** Lets the 'close' events of the responses sent so far run. */
const flush = () => new Promise((resolve) => setTimeout(resolve, 20));

describe('logRequests', () => {
  afterEach(async () => {
    await running?.close();
    running = undefined;
  });

  it('writes no line for a successful request at info: it is a debug line, and is not even built', async () => {
    const { server, lines } = await listening('info');
    const getHeaders = jest.spyOn(ServerResponse.prototype, 'getHeaders');
    await get(server, '/ok');
    await flush();
    expect(lines).toEqual([]);
    expect(getHeaders).not.toHaveBeenCalled();
    getHeaders.mockRestore();
  });

  it('writes no line at info for a request answered at the front door either', async () => {
    const { server, lines } = await listening('info');
    await get(server, '/front');
    await flush();
    expect(lines).toEqual([]);
  });

  it('at debug logs a request answered at the front door as those Fastify answers, with its id', async () => {
    const { server, lines } = await listening('debug');
    await get(server, '/front', { 'x-request-id': 'f1' });
    await get(server, '/ok', { 'x-request-id': 'f2' });
    await flush();
    const line = (id: string, url: string) =>
      expect.objectContaining({
        level: 'debug',
        msg: 'request completed',
        reqId: id,
        req: expect.objectContaining({ id, method: 'GET', url, remoteAddress: '127.0.0.1', remotePort: expect.any(Number) }),
        res: expect.objectContaining({ statusCode: 200 }),
        responseTime: expect.any(Number),
      });
    expect(lines).toEqual([line('f1', '/front'), line('f2', '/ok')]);
    expect((lines[0].res as { headers: Record<string, unknown> }).headers).toMatchObject({ 'x-request-id': 'f1', 'content-length': 4 });
  });

  it('logs client mistakes at info, server failures at error, an unhealthy /health at warn', async () => {
    const { server, lines } = await listening('info');
    for (const url of ['/missing', '/broken', '/health']) await get(server, url, { 'x-request-id': url.slice(1) });
    await flush();
    expect(lines.map((l) => [l.reqId, l.level, l.msg, (l.res as { statusCode: number }).statusCode])).toEqual([
      ['missing', 'info', 'request completed', 404],
      ['broken', 'error', 'request failed', 500],
      ['health', 'warn', 'request failed', 503],
    ]);
  });

  it('at debug logs every request but the probes, with the request (Authorization masked) and the response', async () => {
    const { server, lines } = await listening('debug');
    await get(server, '/healthz');
    await get(server, '/ok', { 'x-request-id': 'r1', authorization: 'Bearer token-value-123' });
    await flush();
    expect(lines).toEqual([
      expect.objectContaining({
        level: 'debug',
        msg: 'request completed',
        reqId: 'r1',
        req: expect.objectContaining({ method: 'GET', url: '/ok', headers: expect.objectContaining({ authorization: '[redacted]' }) }),
        res: expect.objectContaining({ statusCode: 200 }),
        responseTime: expect.any(Number),
      }),
    ]);
    expect(JSON.stringify(lines)).not.toContain('token-value-123');
  });

  it('gives the lines written while a request runs its id', async () => {
    const { server, lines } = await listening('info');
    await get(server, '/inside', { 'x-request-id': 'r2' });
    await flush();
    expect(lines).toEqual([expect.objectContaining({ level: 'warn', msg: 'something happened', hash: 'abc', reqId: 'r2' })]);
  });

  it('leaves routes that enter their context themselves outside one until they do', async () => {
    const { server, lines } = await listening('info');
    await get(server, '/own/quiet', { 'x-request-id': 'r3' });
    await get(server, '/own/logging', { 'x-request-id': 'r4' });
    await flush();
    expect(lines).toEqual([expect.objectContaining({ msg: 'in context', reqId: 'r4' })]);
  });

  it('disables the storage of contexts whenever none is open, so that requests without one pay for no hook', async () => {
    const { server } = await listening('info');
    const disable = jest.spyOn(storage, 'disable');
    try {
      await get(server, '/ok');
      await get(server, '/own/quiet');
      await get(server, '/own/logging');
      await flush();
      // Once after /ok, once after /own/logging: /own/quiet opened none.
      expect(disable).toHaveBeenCalledTimes(2);
    } finally {
      disable.mockRestore();
    }
  });

  it('logs a client hanging up at info, not as an error', async () => {
    const { server, lines } = await listening('info');
    await new Promise<void>((resolve, reject) => {
      const { port } = server.server.address() as AddressInfo;
      const req = request({ port, host: '127.0.0.1', path: '/slow', headers: { 'x-request-id': 'quit' } }, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', reject);
      req.end();
    });
    for (let i = 0; i < 100 && lines.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(lines).toEqual([expect.objectContaining({ level: 'info', msg: 'client closed the connection', reqId: 'quit' })]);
  });
});
