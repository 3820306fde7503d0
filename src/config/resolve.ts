import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type * as Yaml from 'yaml';
import { errorCode, errorMessage } from 'src/common/error-fields';
import { ConfigError, OptionSpec, OptionValue, parseOptionValue } from './option';
import { OPTIONS } from './options';
import { OptionValues } from './option-reader';

export interface ConfigSources {
  /** Values given on the command line, keyed by flag name (raw strings, or arrays for repeatables). */
  flags: Record<string, unknown>;
  env: NodeJS.ProcessEnv;
}

/**
 * Resolves every option by precedence flag > config file > environment > default, parsing each value
 * with its option's parser. Errors name the option (never a secret's value).
 */
export function resolveOptions(sources: ConfigSources, options: readonly OptionSpec[] = OPTIONS): OptionValues {
  const file = loadConfigFile(sources);
  const values: Record<string, OptionValue | undefined> = {};
  for (const spec of options) {
    values[spec.flag] = resolveOne(spec, sources, file);
  }
  return values;
}

function resolveOne(spec: OptionSpec, sources: ConfigSources, file: Record<string, unknown>): OptionValue | undefined {
  const flagValue = sources.flags[spec.flag];
  if (flagValue !== undefined) return parseOptionValue(spec, flagValue);
  if (spec.key !== null) {
    const fromFile = lookupKey(file, spec.key);
    if (fromFile !== undefined && fromFile !== null) return parseOptionValue(spec, fromFile);
  }
  for (const name of [spec.env, ...(spec.alsoEnv ?? [])]) {
    const fromEnv = sources.env[name];
    if (fromEnv !== undefined && fromEnv !== '') return parseOptionValue(spec, fromEnv);
  }
  return spec.default === undefined ? undefined : parseOptionValue(spec, spec.default);
}

function lookupKey(tree: Record<string, unknown>, dotted: string): unknown {
  let node: unknown = tree;
  for (const part of dotted.split('.')) {
    if (node === null || typeof node !== 'object' || Array.isArray(node)) return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

/** Every dotted key path that leads to a value (a scalar or a list) in a parsed YAML tree. */
function leafKeys(tree: unknown, prefix = ''): string[] {
  if (tree === null) return []; // an empty section, e.g. `s3:` with every key commented out
  if (typeof tree !== 'object' || Array.isArray(tree)) return [prefix];
  return Object.entries(tree as Record<string, unknown>).flatMap(([k, v]) => leafKeys(v, prefix ? `${prefix}.${k}` : k));
}

function loadConfigFile(sources: ConfigSources): Record<string, unknown> {
  const flag = sources.flags['config'];
  const explicit = (typeof flag === 'string' ? flag : undefined) ?? sources.env.NCPS_CONFIG_FILE;
  const xdg = sources.env.XDG_CONFIG_HOME ?? (sources.env.HOME ? join(sources.env.HOME, '.config') : undefined);
  const implicit = xdg ? join(xdg, 'ncps', 'config.yaml') : undefined;
  const path = explicit || (implicit && existsSync(implicit) ? implicit : undefined);
  if (!path) return {};
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`--config: cannot read ${path}: ${errorCode(e) ?? 'error'}`);
  }
  // The YAML parser is loaded only when there is a file to read: most servers are configured by flags
  // or the environment, and it would stay in memory for nothing.
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded on demand (see above)
  const { parse: parseYaml } = require('yaml') as typeof Yaml;
  let tree: unknown;
  try {
    tree = parseYaml(text) ?? {};
  } catch (e) {
    throw new ConfigError(`--config: ${path} is not valid YAML: ${errorMessage(e).split('\n')[0]}`);
  }
  if (typeof tree !== 'object' || Array.isArray(tree)) throw new ConfigError(`--config: ${path} must be a YAML mapping`);
  const known = new Set(OPTIONS.map((o) => o.key).filter((k): k is string => k !== null));
  const unknown = leafKeys(tree).filter((k) => !known.has(k));
  if (unknown.length > 0) {
    throw new ConfigError(`--config: unknown key${unknown.length > 1 ? 's' : ''} in ${path}: ${unknown.join(', ')}`);
  }
  return tree as Record<string, unknown>;
}
