import { IncomingMessage, ServerResponse } from 'node:http';
import { Level, LoggerOptions, stdTimeFunctions } from 'pino';
import { NcpsConfig } from 'src/config/config';
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

/**
 * How the lines of one request's end are written: at which level, with which message, and which
 * requests are not logged at all. Named as pino-http names them; applied by logRequests.
 */
export interface RequestLogOptions {
  customLogLevel: (req: IncomingMessage, res: ServerResponse) => Level;
  /** For responses below 500, and hang-ups. */
  customSuccessMessage: (req: IncomingMessage, res: ServerResponse) => string;
  /** For 5xx responses. */
  customErrorMessage: (req: IncomingMessage, res: ServerResponse) => string;
  autoLogging: { ignore: (req: IncomingMessage) => boolean };
}

/** Options of the root logger and of request logging, in the shape nestjs-pino takes (`ncps lru run` passes them on). */
export function loggerOptions(
  config: NcpsConfig,
  output: LogOutput = { tty: process.stdout.isTTY === true },
): { pinoHttp: LoggerOptions & RequestLogOptions } {
  const format: LoggerOptions = output.tty
    ? {
        transport: {
          target: 'pino-pretty',
          options: {
            colorize: true,
            translateTime: 'SYS:standard',
            ignore: 'pid,hostname,context',
            messageFormat: '{if context}{context}: {end}{msg}',
          },
        },
      }
    : // Level names and ISO times: what `grep`, jq and log shippers expect (docs/ha.md's examples use "level":"info").
      { formatters: { level: (label) => ({ level: label }) }, timestamp: stdTimeFunctions.isoTime };
  const maskSecrets = secretMasker(secretValues(config));
  return {
    pinoHttp: {
      ...format,
      level: config.logLevel,
      redact: { paths: REDACTED_PATHS, censor: MASK },
      ...(maskSecrets ? { hooks: { streamWrite: maskSecrets } } : {}),
      customLogLevel: (req, res) => {
        if (res.statusCode >= 500) return req.url === HEALTH_URL ? 'warn' : 'error';
        // A client hanging up mid-body is normal on a cache (Nix cancels substitutions): not an error.
        if (!res.writableFinished) return 'info';
        return res.statusCode >= 400 ? 'info' : 'debug';
      },
      customSuccessMessage: (_req, res) => (res.writableFinished ? 'request completed' : 'client closed the connection'),
      customErrorMessage: (_req, res) => (res.writableFinished ? 'request failed' : 'client closed the connection'),
      // Load balancers probe these every few seconds.
      autoLogging: { ignore: (req) => req.url === '/healthz' || req.url === '/pubkey' },
    },
  };
}
