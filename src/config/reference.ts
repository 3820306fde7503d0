import { OptionSpec } from './option';
import { OPTION_GROUPS } from './options';

/** The configuration reference (docs/configuration.md), generated from the option table. */
export function renderConfigurationReference(): string {
  const lines = [
    '# Configuration reference',
    '',
    '<!-- Generated from src/config/options.ts by `npm run docs:config`; a test fails when it drifts. -->',
    '',
    'Every option can be given as a flag, a key in the YAML file (`--config`) or an environment variable.',
    'Precedence: flag > config file > environment > default. Durations are Go-style (`100ms`, `5m`, `1h30m`);',
    'sizes are `<n>B|K|M|G|T` (1024-based). Lists are repeated flags, YAML lists, or comma-separated values.',
    '',
  ];
  for (const group of OPTION_GROUPS) {
    lines.push(`## ${group.title}`, '', '| flag | config key | environment | default | description |', '|---|---|---|---|---|');
    for (const o of group.options) {
      lines.push(
        `| \`--${o.flag}\` | ${o.key ? `\`${o.key}\`` : '—'} | ${[o.env, ...(o.alsoEnv ?? [])].map((name) => `\`${name}\``).join(', ')} | ${defaultCell(o)} | ${escape(describe(o))} |`,
      );
    }
    lines.push('');
  }
  return lines.join('\n');
}

function defaultCell(o: OptionSpec): string {
  if (o.default !== undefined) return `\`${o.default}\``;
  return o.defaultText ? escape(o.defaultText) : '—';
}

export function describe(o: OptionSpec): string {
  const extras: string[] = [];
  if (o.choices) extras.push(`One of: ${o.choices.join(', ')}.`);
  if (o.repeatable) extras.push('Repeatable.');
  if (o.secret) extras.push('Secret: never logged.');
  return [o.help, ...extras].join(' ');
}

function escape(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
