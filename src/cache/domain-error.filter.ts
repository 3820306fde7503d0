import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import { FastifyReply, FastifyRequest } from 'fastify';
import { DomainError, UnauthorizedError } from 'src/common/errors';

/**
 * Maps errors to HTTP once for the whole app: domain errors to their status with a one-line reason,
 * Nest's HTTP exceptions (and Fastify's own client errors, which Nest turns into them) as they are,
 * anything else to 500 — logged once, with the request id. A client that hung up gets nothing and
 * is not an error: whatever failed (the body it stopped sending, the stream it stopped reading)
 * failed because it left.
 */
@Catch()
export class DomainErrorFilter implements ExceptionFilter {
  private readonly logger = new Logger('HTTP');

  catch(error: unknown, host: ArgumentsHost): void {
    this.answer(error, host.switchToHttp().getRequest<FastifyRequest>(), host.switchToHttp().getResponse<FastifyReply>());
  }

  /** The same for the routes Fastify serves without Nest (see hot-routes.ts). */
  answer(error: unknown, req: FastifyRequest, reply: FastifyReply): void {
    if (clientIsGone(req, reply)) {
      this.logger.log({ req_id: req.id, url: req.url, reason: errorMessage(error) }, 'no answer sent: the connection is closed');
      reply.raw.destroy();
      return;
    }
    if (reply.sent || reply.raw.headersSent) {
      // Too late for a status: abort so the client sees a broken transfer, never a short 200.
      reply.raw.destroy();
      return;
    }
    let status = 500;
    let message = 'internal error';
    if (error instanceof DomainError) {
      status = error.status;
      message = error.message;
      if (error instanceof UnauthorizedError) reply.header('www-authenticate', 'Bearer, Basic realm="ncps"');
    } else if (error instanceof HttpException) {
      status = error.getStatus();
      message = error.message;
      if (status >= 500) this.logger.error({ err: error, req_id: req.id, url: req.url }, 'request failed');
    } else {
      this.logger.error({ err: error, req_id: req.id, url: req.url }, 'request failed');
    }
    void reply.status(status).header('content-type', 'text/plain; charset=utf-8').send(`${message}\n`);
  }
}

/**
 * The connection is closed (hang-up, reset, or closed by Node after a framing error it answered
 * with 400 itself): no answer can reach the client any more.
 */
function clientIsGone(req: FastifyRequest, reply: FastifyReply): boolean {
  const socket = req.raw.socket as { destroyed?: boolean } | null;
  return reply.raw.destroyed || !socket || socket.destroyed === true;
}

function errorMessage(error: unknown): string {
  return error instanceof Error || (typeof error === 'object' && error !== null && 'message' in error)
    ? String(error.message)
    : String(error);
}
