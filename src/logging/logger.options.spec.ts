import { IncomingMessage, ServerResponse } from 'node:http';
import { Writable } from 'node:stream';
import pinoHttp, { Options } from 'pino-http';
import { buildConfig } from 'src/config/build-config';
import { resolveOptions } from 'src/config/resolve';
import { loggerOptions } from './logger.options';

const config = buildConfig(
  resolveOptions({ flags: { 'cache-upstream-url': [], 'cache-get-token': 'token-value-123', 'log-level': 'debug' }, env: {} }),
  { hostname: 'box', tempDir: '/tmp', homeDir: '/home/u' },
);

/** A pino-http logger with ncps' options, writing its lines into `lines`. */
function capture(): { logger: ReturnType<typeof pinoHttp>['logger']; lines: Array<Record<string, unknown>>; options: Options } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()));
      done();
    },
  });
  const options = loggerOptions(config, { tty: false }).pinoHttp as Options;
  return { logger: pinoHttp(options, sink).logger, lines, options };
}

const response = (statusCode: number, writableFinished: boolean) => ({ statusCode, writableFinished }) as ServerResponse;
const requestTo = (url: string) => ({ url }) as IncomingMessage;

describe('loggerOptions', () => {
  it('writes JSON lines with level names and ISO times when not on a terminal', () => {
    const { logger, lines } = capture();
    logger.info({ hash: 'abc' }, 'acquired download lock');
    expect(lines).toEqual([
      expect.objectContaining({
        level: 'info',
        msg: 'acquired download lock',
        hash: 'abc',
        time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      }),
    ]);
  });

  it('pretty-prints on a terminal', () => {
    const { pinoHttp: options } = loggerOptions(config, { tty: true }) as { pinoHttp: Options };
    expect(options.transport).toMatchObject({ target: 'pino-pretty' });
  });

  it('masks secret values in every line and censors the Authorization header', () => {
    const { logger, lines } = capture();
    logger.error(
      { err: new Error('upstream said: bad token token-value-123'), req: { headers: { authorization: 'Bearer anything' } } },
      'failed',
    );
    expect(JSON.stringify(lines)).not.toContain('token-value-123');
    expect(lines[0]).toMatchObject({
      err: { message: 'upstream said: bad token [redacted]' },
      req: { headers: { authorization: '[redacted]' } },
    });
  });

  it('logs a client hang-up at info, never as an error', () => {
    const { options } = capture();
    const level = options.customLogLevel!;
    const message = options.customSuccessMessage!;
    expect(level(requestTo('/nar/x.nar'), response(200, false), undefined)).toBe('info');
    expect(message(requestTo('/nar/x.nar'), response(200, false), 0)).toBe('client closed the connection');
  });

  it.each([
    ['/nar/x.nar', 200, 'debug'],
    ['/x.narinfo', 404, 'info'],
    ['/x.narinfo', 500, 'error'],
    // /health answering 503 is it doing its job: a warning, not an error of ncps.
    ['/health', 503, 'warn'],
  ])('logs %s answering %i at %s', (url, status, expected) => {
    expect(capture().options.customLogLevel!(requestTo(url), response(status, true), undefined)).toBe(expected);
  });
});
