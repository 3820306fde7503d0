import { errorMessage } from 'src/common/error-fields';
/**
 * One row of the option table: everything needed to read an option from a flag, a YAML key or an
 * environment variable, to parse and validate it, and to document it.
 */
export type OptionKind = 'string' | 'boolean' | 'integer' | 'duration' | 'size' | 'list';

export interface OptionSpec {
  /** Flag name without the leading dashes, e.g. `cache-hostname`. */
  readonly flag: string;
  /** Dotted YAML path, e.g. `cache.hostname`; null when the option cannot come from the file. */
  readonly key: string | null;
  /** Environment variable, e.g. `CACHE_HOSTNAME`. */
  readonly env: string;
  /** Further environment variables read when `env` is unset, in order (e.g. the lower-case `https_proxy`). */
  readonly alsoEnv?: readonly string[];
  readonly kind: OptionKind;
  /** Default as the user would write it (parsed like any other value); omitted = unset. */
  readonly default?: string;
  /** How the default is described when it is computed at start (hostname, data directory, ...). */
  readonly defaultText?: string;
  readonly help: string;
  /** Value must never be printed (passwords, tokens, URLs with credentials). */
  readonly secret?: boolean;
  /** The flag may be given several times; values accumulate. */
  readonly repeatable?: boolean;
  /** Placeholder in --help, e.g. URL, DURATION. */
  readonly placeholder?: string;
  /** Closed set of accepted values. */
  readonly choices?: readonly string[];
}

export type OptionValue = string | boolean | number | string[];

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

const DURATION_UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Go-style duration (`100ms`, `5m`, `1h30m`) to milliseconds. */
export function parseDuration(text: string): number {
  const trimmed = text.trim();
  if (trimmed === '0') return 0;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  let match: RegExpExecArray | null;
  while ((match = re.exec(trimmed)) !== null) {
    total += Number(match[1]) * DURATION_UNITS[match[2]];
    consumed = re.lastIndex;
  }
  if (consumed === 0 || consumed !== trimmed.length) {
    throw new ConfigError(`"${text}" is not a duration (examples: 500ms, 30s, 5m, 1h30m)`);
  }
  return total;
}

const SIZE_UNITS: Record<string, number> = { B: 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/** `<n>B|K|M|G|T` (1024-based; a plain number is bytes) to bytes. */
export function parseSize(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([BKMGT])?(?:i?B)?$/i.exec(text.trim());
  if (!match) throw new ConfigError(`"${text}" is not a size (examples: 512M, 50G, 1T)`);
  const unit = (match[2] ?? 'B').toUpperCase();
  return Math.floor(Number(match[1]) * SIZE_UNITS[unit]);
}

export function parseBoolean(text: string): boolean {
  const lower = text.trim().toLowerCase();
  if (['true', '1', 'yes', 'on', 't'].includes(lower)) return true;
  if (['false', '0', 'no', 'off', 'f'].includes(lower)) return false;
  throw new ConfigError(`"${text}" is not a boolean (true or false)`);
}

/** Parses one raw value (string from a flag or env, or a YAML scalar/list) for `spec`. */
export function parseOptionValue(spec: OptionSpec, raw: unknown): OptionValue {
  try {
    const value = parseByKind(spec, raw);
    if (spec.choices && typeof value === 'string' && !spec.choices.includes(value)) {
      throw new ConfigError(`"${value}" is not one of ${spec.choices.join(', ')}`);
    }
    return value;
  } catch (e) {
    // The message names the option; a secret's value is never echoed.
    const reason = spec.secret ? 'invalid value' : errorMessage(e);
    throw new ConfigError(`--${spec.flag}: ${reason}`);
  }
}

function parseByKind(spec: OptionSpec, raw: unknown): OptionValue {
  if (spec.kind === 'list') {
    const items = Array.isArray(raw) ? raw.map(String) : String(raw).split(',');
    return items.map((s) => s.trim()).filter((s) => s.length > 0);
  }
  if (Array.isArray(raw) || (raw !== null && typeof raw === 'object')) {
    throw new ConfigError('expected a single value');
  }
  const text = String(raw);
  switch (spec.kind) {
    case 'string':
      return text;
    case 'boolean':
      return typeof raw === 'boolean' ? raw : parseBoolean(text);
    case 'integer': {
      if (!/^-?\d+$/.test(text.trim())) throw new ConfigError(`"${text}" is not a whole number`);
      return Number(text);
    }
    case 'duration':
      return parseDuration(text);
    case 'size':
      return typeof raw === 'number' ? raw : parseSize(text);
  }
}
