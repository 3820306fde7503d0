import { LockBackend } from './config';
import { OptionSpec } from './option';
import { OptionReader } from './option-reader';
import { readOptions } from './options';
import { resolveOptions } from './resolve';

/** True when A and B are the same type (not merely assignable one way). */
type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

const resolved = (flags: Record<string, unknown> = {}) => readOptions(resolveOptions({ flags, env: {} }));

describe('OptionReader', () => {
  it('reads each kind with its accessor, defaults applied', () => {
    const opts = resolved({
      'cache-hostname': 'box',
      'cache-sign-narinfo': 'false',
      'cache-negative-ttl': '2s',
      'cache-redis-addrs': 'a:1,b:2',
    });
    expect(opts.string('cache-hostname')).toBe('box');
    expect(opts.bool('cache-sign-narinfo')).toBe(false);
    expect(opts.bool('cache-lock-retry-jitter')).toBe(true);
    expect(opts.number('cache-negative-ttl')).toBe(2000);
    expect(opts.number('cache-priority')).toBe(10);
    expect(opts.list('cache-redis-addrs')).toEqual(['a:1', 'b:2']);
  });

  it('returns undefined for an unset option without a default, and types it so', () => {
    const opts = resolved();
    const hostname = opts.string('cache-hostname');
    const maxSize = opts.number('cache-max-size');
    const redisAddrs = opts.list('cache-redis-addrs');
    expect([hostname, maxSize, redisAddrs]).toEqual([undefined, undefined, undefined]);
    const typed: [Same<typeof hostname, string | undefined>, Same<typeof maxSize, number | undefined>] = [true, true];
    // An option with a default is never undefined, and its type says so.
    const priority = opts.number('cache-priority');
    const defaulted: Same<typeof priority, number> = true;
    expect([typed, defaulted, priority]).toEqual([[true, true], true, 10]);
  });

  it('narrows choices to their literal union', () => {
    const backend = resolved({ 'cache-lock-backend': 'postgres' }).choice('cache-lock-backend');
    const level = resolved().choice('log-level');
    const narrowed: [Same<typeof backend, LockBackend>, Same<typeof level, 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal'>] = [
      true,
      true,
    ];
    expect([backend, level, narrowed]).toEqual(['postgres', 'info', [true, true]]);
  });

  it('refuses, as a programming error, an accessor that does not match the kind of the option', () => {
    const opts = resolved();
    // @ts-expect-error -- a string option
    expect(() => opts.bool('cache-hostname')).toThrow(
      'programming error: --cache-hostname is a string option, it cannot be read with bool()',
    );
    // @ts-expect-error -- a duration
    expect(() => opts.list('cache-negative-ttl')).toThrow('--cache-negative-ttl is a duration option, it cannot be read with list()');
    // @ts-expect-error -- a list
    expect(() => opts.string('cache-redis-addrs')).toThrow('--cache-redis-addrs is a list option, it cannot be read with string()');
    // @ts-expect-error -- has choices: read with choice()
    expect(() => opts.string('cache-lock-backend')).toThrow('--cache-lock-backend has choices; read it with choice()');
    // @ts-expect-error -- a string option without choices
    expect(() => opts.choice('cache-hostname')).toThrow('--cache-hostname has no choices; read it with string()');
    // @ts-expect-error -- misspelled
    expect(() => opts.string('cache-hostnme')).toThrow('programming error: there is no option --cache-hostnme');
    expect(() => opts.bool('otel-enabled')).not.toThrow();
  });

  it('refuses values that did not come from resolving the table, without echoing them', () => {
    expect(() => readOptions({}).number('cache-priority')).toThrow('--cache-priority has a default but no resolved value');
    expect(() => readOptions({ 'cache-redis-password': 12345 }).string('cache-redis-password')).toThrow(
      /^programming error: --cache-redis-password holds a value that is not a valid string value$/,
    );
    expect(() => readOptions({ 'cache-lock-backend': 'zookeeper' }).choice('cache-lock-backend')).toThrow('not a valid string value');
    expect(() => readOptions({ 'cache-redis-addrs': 'a:1' }).list('cache-redis-addrs')).toThrow('not a valid list value');
  });

  it('keeps the run-time checks over a table whose rows are not literal types', () => {
    const table: readonly OptionSpec[] = [{ flag: 'name', key: null, env: 'NAME', kind: 'string', help: '' }];
    const opts = new OptionReader({ name: 'x' }, table);
    expect(opts.string('name')).toBe('x');
    expect(() => opts.number('name')).toThrow('--name is a string option, it cannot be read with number()');
    expect(() => opts.bool('other')).toThrow('there is no option --other');
  });
});
