import { IncomingMessage, ServerResponse } from 'node:http';
import { Params } from 'nestjs-pino';
import { LoggerOptions, stdTimeFunctions } from 'pino';
import { NcpsConfig } from 'src/config/config';
import { requestId } from './request-id';
import { MASK, secretMasker, secretValues } from './secrets';

/** Paths of log fields that carry secrets whatever their value; pino replaces them. */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers["proxy-authorization"]',
  'req.headers.cookie',
  'password',
  '*.password',
  'secretAccessKey',
  '*.secretAccessKey',
  'token',
  '*.token',
];

/** Where the lines go: a terminal gets them pretty, anything else (journald, a file, a pipe) JSON lines. */
export interface LogOutput {
  tty: boolean;
}

/** Statuses of /health are its answer, not a failure of ncps: a 503 there is a warning, not an error. */
const HEALTH_URL = '/health';

export function loggerOptions(config: NcpsConfig, output: LogOutput = { tty: process.stdout.isTTY === true }): Params {
  const format: LoggerOptions = output.tty
    ? {
        transport: {
          target: 'pino-pretty',
          options: { colorize: true, translateTime: 'SYS:standard', ignore: 'pid,hostname,context', messageFormat: '{if context}{context}: {end}{msg}' },
        },
      }
    : // Level names and ISO times: what `grep`, jq and log shippers expect (the seed's lines use "level":"info").
      { formatters: { level: (label) => ({ level: label }) }, timestamp: stdTimeFunctions.isoTime };
  const maskSecrets = secretMasker(secretValues(config));
  return {
    pinoHttp: {
      ...format,
      level: config.logLevel,
      redact: { paths: REDACTED_PATHS, censor: MASK },
      ...(maskSecrets ? { hooks: { streamWrite: maskSecrets } } : {}),
      // Fastify assigns the id (src/logging/request-id.ts); this only serves requests it never saw.
      genReqId: requestId,
      customLogLevel: (req: IncomingMessage, res: ServerResponse, err?: Error) => {
        if (err || res.statusCode >= 500) return req.url === HEALTH_URL && !err ? 'warn' : 'error';
        // A client hanging up mid-body is normal on a cache (Nix cancels substitutions): not an error.
        if (!res.writableFinished) return 'info';
        return res.statusCode >= 400 ? 'info' : 'debug';
      },
      customSuccessMessage: (_req, res) => (res.writableFinished ? 'request completed' : 'client closed the connection'),
      customErrorMessage: (_req, res) => (res.writableFinished ? 'request failed' : 'client closed the connection'),
      // For a 5xx without an exception pino-http makes up an Error whose stack only shows pino-http itself.
      customErrorObject: (_req, res, error: Error, fields: Record<string, unknown>) =>
        error.message === `failed with status code ${res.statusCode}` ? { ...fields, err: undefined } : fields,
      quietReqLogger: true,
      // Load balancers probe these every few seconds.
      autoLogging: { ignore: (req) => req.url === '/healthz' || req.url === '/pubkey' },
    },
  };
}
