import { BadRequestException, HttpException, Logger } from '@nestjs/common';
import { ExecutionContextHost } from '@nestjs/core/helpers/execution-context-host';
import { NotFoundError, UnauthorizedError } from 'src/common/errors';
import { DomainErrorFilter } from './domain-error.filter';

/** A reply and request as the filter sees them: what was sent, and whether the connection is still there. */
function exchange({ socketDestroyed = false, headersSent = false } = {}) {
  const sent: { status?: number; body?: string; headers: Record<string, string> } = { headers: {} };
  const raw: { destroyed: boolean; headersSent: boolean; destroy: jest.Mock } = { destroyed: false, headersSent, destroy: jest.fn() };
  raw.destroy.mockImplementation(() => (raw.destroyed = true));
  const reply = {
    sent: false,
    raw,
    status: (s: number) => ((sent.status = s), reply),
    header: (k: string, v: string) => ((sent.headers[k] = v), reply),
    send: (b: string) => ((sent.body = b), reply),
  };
  const req = { id: 'r1', url: '/x', raw: { socket: { destroyed: socketDestroyed } } };
  // The host Nest hands to filters, over an HTTP request and its reply (what switchToHttp() reads).
  const host = new ExecutionContextHost([req, reply]);
  return { host, sent, raw };
}

describe('DomainErrorFilter', () => {
  let sut: DomainErrorFilter;
  let errors: jest.SpyInstance;
  let infos: jest.SpyInstance;

  beforeEach(() => {
    sut = new DomainErrorFilter();
    errors = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    infos = jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
  });
  afterEach(() => jest.restoreAllMocks());

  it('maps a domain error to its status and reason, without logging', () => {
    const { host, sent } = exchange();
    sut.catch(new NotFoundError('narinfo not found'), host);
    expect(sent).toMatchObject({ status: 404, body: 'narinfo not found\n' });
    expect(errors).not.toHaveBeenCalled();
  });

  it('asks for credentials on a 401', () => {
    const { host, sent } = exchange();
    sut.catch(new UnauthorizedError('a valid token is required'), host);
    expect(sent.status).toBe(401);
    expect(sent.headers['www-authenticate']).toMatch(/Bearer/);
  });

  it('passes on a client error Fastify raised (Nest wraps them as HttpException), without logging', () => {
    const { host, sent } = exchange();
    sut.catch(new HttpException('Unsupported Media Type: ;;;', 415), host);
    sut.catch(new BadRequestException('bad'), host);
    expect(sent.status).toBe(400);
    expect(errors).not.toHaveBeenCalled();
  });

  it('answers anything else with 500 and logs it as an error, once', () => {
    const { host, sent } = exchange();
    sut.catch(new TypeError('boom'), host);
    expect(sent).toMatchObject({ status: 500, body: 'internal error\n' });
    expect(errors).toHaveBeenCalledTimes(1);
  });

  it('sends nothing to a client that is gone and logs it at info, whatever the error', () => {
    for (const error of [Object.assign(new Error('aborted'), { code: 'ECONNRESET' }), new TypeError('boom'), new NotFoundError('x')]) {
      const { host, sent, raw } = exchange({ socketDestroyed: true });
      sut.catch(error, host);
      expect(sent.status).toBeUndefined();
      expect(raw.destroy).toHaveBeenCalled();
    }
    expect(errors).not.toHaveBeenCalled();
    expect(infos).toHaveBeenCalledTimes(3);
    expect(infos.mock.calls[0]).toEqual([{ req_id: 'r1', url: '/x', reason: 'aborted' }, 'no answer sent: the connection is closed']);
  });

  it('breaks the transfer when the answer has started: never a short 200', () => {
    const { host, sent, raw } = exchange({ headersSent: true });
    sut.catch(new Error('upstream cut'), host);
    expect(sent.status).toBeUndefined();
    expect(raw.destroy).toHaveBeenCalled();
  });
});
