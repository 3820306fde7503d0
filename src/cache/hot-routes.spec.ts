import { HttpAdapterHost } from '@nestjs/core';
import { Logger } from '@nestjs/common';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import fastify, { FastifyInstance } from 'fastify';
import { storage } from 'nestjs-pino/storage';
import pino from 'pino';
import { NotFoundError } from 'src/common/errors';
import { RequestContexts } from 'src/logging/request-logging';
import { DomainErrorFilter } from './domain-error.filter';
import { HotRoutes } from './hot-routes';
import { testConfig } from 'test/support/config';

const contexts = () => new RequestContexts(pino({ level: 'silent' }));

const load = (flags: Record<string, unknown>) => testConfig(flags);

/** A Fastify server with one hot route, `GET /:name`, answering with `answer`. */
function serverWith(flags: Record<string, unknown>, answer: (name: string) => Promise<string>): FastifyInstance {
  const server = fastify();
  const adapterHost = new HttpAdapterHost();
  adapterHost.httpAdapter = new FastifyAdapter(server);
  const sut = new HotRoutes(load(flags), adapterHost, contexts());
  sut.read('GET', ['/:name'], async (request, reply) => {
    reply.header('content-type', 'text/x-test').send(await answer(request.params.name));
  });
  return server;
}

describe('HotRoutes', () => {
  beforeEach(() => jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined));
  afterEach(() => jest.restoreAllMocks());

  it('serves reads without a token when no get token is set', async () => {
    const server = serverWith({}, async (name) => `hello ${name}`);
    const res = await server.inject({ method: 'GET', url: '/x' });
    expect({ status: res.statusCode, body: res.body, type: res.headers['content-type'] }).toEqual({
      status: 200,
      body: 'hello x',
      type: 'text/x-test',
    });
  });

  it('asks for the get token (or the put token) when one is set, before running the handler', async () => {
    const answer = jest.fn(async () => 'secret');
    const server = serverWith({ 'cache-get-token': 'read-token', 'cache-put-token': 'write-token' }, answer);
    for (const authorization of [undefined, 'Bearer wrong', 'Bearer read-token-and-more']) {
      const res = await server.inject({ method: 'GET', url: '/x', headers: authorization ? { authorization } : {} });
      expect({ status: res.statusCode, body: res.body, challenge: res.headers['www-authenticate'] }).toEqual({
        status: 401,
        body: 'a valid token is required\n',
        challenge: 'Bearer, Basic realm="ncps"',
      });
    }
    expect(answer).not.toHaveBeenCalled();
    const basic = `Basic ${Buffer.from('nix:write-token').toString('base64')}`;
    for (const authorization of ['Bearer read-token', basic]) {
      expect((await server.inject({ method: 'GET', url: '/x', headers: { authorization } })).statusCode).toBe(200);
    }
  });

  it('answers the errors of its handler as the domain error filter does', async () => {
    const server = serverWith({}, async (name) => {
      if (name === 'absent') throw new NotFoundError('narinfo not found');
      throw new Error('the disk is on fire');
    });
    const absent = await server.inject({ method: 'GET', url: '/absent' });
    expect({ status: absent.statusCode, body: absent.body, type: absent.headers['content-type'] }).toEqual({
      status: 404,
      body: 'narinfo not found\n',
      type: 'text/plain; charset=utf-8',
    });
    const broken = await server.inject({ method: 'GET', url: '/broken' });
    expect({ status: broken.statusCode, body: broken.body }).toEqual({ status: 500, body: 'internal error\n' });
    expect(Logger.prototype.error).toHaveBeenCalledTimes(1);
  });

  it('runs the handler outside the log context, and answers its errors inside it', async () => {
    const inHandler: unknown[] = [];
    const inFilter: unknown[] = [];
    jest.spyOn(DomainErrorFilter.prototype, 'answer').mockImplementation((_e, _req, reply) => {
      inFilter.push(storage.getStore());
      void reply.code(404).send();
    });
    const server = serverWith({}, async () => {
      inHandler.push(storage.getStore());
      throw new NotFoundError('narinfo not found');
    });
    expect((await server.inject({ method: 'GET', url: '/x' })).statusCode).toBe(404);
    expect(inHandler).toEqual([undefined]);
    expect(inFilter).toEqual([expect.objectContaining({ logger: expect.anything() })]);
  });

  it('registers nothing without an HTTP server', () => {
    const sut = new HotRoutes(load({}), new HttpAdapterHost(), contexts());
    expect(() => sut.read('GET', ['/:name'], async () => undefined)).not.toThrow();
  });
});
