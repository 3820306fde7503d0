import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import { FastifyReply, FastifyRequest } from 'fastify';
import { DomainError, UnauthorizedError } from 'src/common/errors';

/**
 * Maps errors to HTTP once for the whole app: domain errors to their status with a one-line reason,
 * Nest's HTTP exceptions as they are, anything else to 500 — logged once, with the request id.
 */
@Catch()
export class DomainErrorFilter implements ExceptionFilter {
  private readonly logger = new Logger('HTTP');

  catch(error: unknown, host: ArgumentsHost): void {
    const reply = host.switchToHttp().getResponse<FastifyReply>();
    const req = host.switchToHttp().getRequest<FastifyRequest>();
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
    } else {
      this.logger.error({ err: error, req_id: req.id, url: req.url }, 'request failed');
    }
    void reply.status(status).header('content-type', 'text/plain; charset=utf-8').send(`${message}\n`);
  }
}
