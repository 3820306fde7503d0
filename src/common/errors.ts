/**
 * Typed domain errors. Services throw these; one exception filter maps them to HTTP statuses
 * (see src/cache/http-exception.filter.ts). Messages are short, safe to show to a client and never
 * carry a secret.
 */
export abstract class DomainError extends Error {
  abstract readonly status: number;
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The thing asked for is not here (nor upstream). */
export class NotFoundError extends DomainError {
  readonly status = 404;
}

/** The client sent something malformed: a bad hash, an invalid narinfo, an unknown extension. */
export class BadRequestError extends DomainError {
  readonly status = 400;
}

/** The client sent a body larger than we accept. */
export class PayloadTooLargeError extends DomainError {
  readonly status = 413;
}

/** The client stopped sending its body for longer than the idle timeout. */
export class RequestTimeoutError extends DomainError {
  readonly status = 408;
}

/** The verb is disabled by configuration (PUT/DELETE). */
export class MethodNotAllowedError extends DomainError {
  readonly status = 405;
}

export class UnauthorizedError extends DomainError {
  readonly status = 401;
}

/** Authenticated, but what was sent is not accepted from anyone: e.g. an upload without a trusted signature. */
export class ForbiddenError extends DomainError {
  readonly status = 403;
}

/** The request clashes with what is stored: e.g. an upload that would replace an upstream narinfo. */
export class ConflictError extends DomainError {
  readonly status = 409;
}

/** A lock could not be taken: backend down (and no degraded mode), or waited too long. */
export class LockUnavailableError extends DomainError {
  readonly status = 503;
  constructor(
    message: string,
    readonly reason: 'timeout' | 'backend_error' | 'circuit_breaker' | 'lost' = 'backend_error',
  ) {
    super(message);
  }
}

/** An upstream sent something we refuse to pass on (bad signature, hash mismatch, truncated body). */
export class UpstreamIntegrityError extends DomainError {
  readonly status = 502;
}
