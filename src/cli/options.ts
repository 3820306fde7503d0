import { Command, Option } from 'commander';
import { NcpsConfig } from 'src/config/config';
import { buildConfig } from 'src/config/build-config';
import { OptionSpec } from 'src/config/option';
import { OPTIONS } from 'src/config/options';
import { describe } from 'src/config/reference';
import { resolveOptions } from 'src/config/resolve';

/** Adds every option of the table to a command, with env and default in its help text. */
export function addConfigOptions(command: Command, options: readonly OptionSpec[] = OPTIONS): Command {
  for (const spec of options) {
    const arg = spec.kind === 'boolean' ? '[bool]' : `<${spec.placeholder ?? 'value'}>`;
    const def = spec.default !== undefined ? `default: ${spec.default}` : spec.defaultText ? `default: ${spec.defaultText}` : '';
    const option = new Option(`--${spec.flag} ${arg}`, `${describe(spec)} [env: ${spec.env}${def ? `; ${def}` : ''}]`);
    if (spec.repeatable) option.argParser((value: string, prev: string[] | undefined) => [...(prev ?? []), value]);
    command.addOption(option);
  }
  return command;
}

/** Builds the validated config from a command's parsed flags and the environment. */
export function configFromCommand(command: Command, env: NodeJS.ProcessEnv): NcpsConfig {
  const parsed = command.opts();
  const flags: Record<string, unknown> = {};
  for (const option of command.options) {
    const name = option.long?.replace(/^--/, '');
    if (name && parsed[option.attributeName()] !== undefined) flags[name] = parsed[option.attributeName()];
  }
  return buildConfig(resolveOptions({ flags, env }));
}
