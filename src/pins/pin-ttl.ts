import { BadRequestError } from 'src/common/errors';
import { ConfigError, parseDuration } from 'src/config/option';

const DAY_MS = 86_400_000;

/**
 * A pin's time to live: days and weeks (`30d`, `2w`, `1d12h`) on top of the Go durations of the
 * configuration (`12h`, `90m`). Must be positive. A 400 names what is wrong.
 */
export function parseTtl(text: string): number {
  const match = /^\s*(?:(\d+)w)?(?:(\d+)d)?(.*?)\s*$/.exec(text)!;
  const [, weeks, days, rest] = match;
  let ms = (Number(weeks ?? 0) * 7 + Number(days ?? 0)) * DAY_MS;
  if (rest !== '') {
    try {
      ms += parseDuration(rest);
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      ms = NaN;
    }
  } else if (weeks === undefined && days === undefined) {
    ms = NaN;
  }
  if (!Number.isFinite(ms) || ms <= 0) throw new BadRequestError(`invalid ttl "${text}" (examples: 30d, 2w, 12h, 90m)`);
  return ms;
}
