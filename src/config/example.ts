import { stringify } from 'yaml';
import { OptionSpec, parseOptionValue } from './option';
import { OPTIONS } from './options';

type Tree = Map<string, Tree | OptionSpec>;

/**
 * config/config.example.yaml, generated from the option table: every key once, nested as the file
 * expects, with its help above it. Keys with a default are set to it; the others are commented out.
 */
export function renderConfigExample(): string {
  const tree: Tree = new Map();
  for (const o of OPTIONS) {
    if (o.key === null) continue;
    const parts = o.key.split('.');
    let node = tree;
    for (const part of parts.slice(0, -1)) {
      if (!node.has(part)) node.set(part, new Map());
      node = node.get(part) as Tree;
    }
    node.set(parts[parts.length - 1], o);
  }
  const header = [
    '# ncps configuration file (generated from src/config/options.ts by `npm run docs:config`).',
    '# Precedence: flag > this file > environment > default. Values shown are the defaults;',
    '# commented-out keys have none.',
    '',
  ];
  return [...header, ...render(tree, '')].join('\n') + '\n';
}

function render(tree: Tree, indent: string): string[] {
  const lines: string[] = [];
  for (const [name, node] of tree) {
    if (node instanceof Map) {
      lines.push(`${indent}${name}:`, ...render(node, `${indent}  `));
      continue;
    }
    lines.push(`${indent}# ${node.help} (--${node.flag}, $${node.env})`);
    if (node.default === undefined) {
      lines.push(`${indent}# ${name}: ${node.kind === 'list' ? `[${node.placeholder ?? 'value'}]` : (node.placeholder ?? 'value')}`);
    } else {
      // Booleans and numbers are written as YAML scalars of their type, the rest as text.
      const typed = node.kind === 'boolean' || node.kind === 'integer' || node.kind === 'list';
      const value = typed ? parseOptionValue(node, node.default) : node.default;
      const text = stringify({ [name]: value })
        .trimEnd()
        .split('\n');
      lines.push(...text.map((l) => `${indent}${l}`));
    }
  }
  return lines;
}
