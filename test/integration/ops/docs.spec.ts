import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { OPTIONS } from 'src/config/options';

/**
 * The Go ncps's docs and code disagreed; ours may not. Every option an operator reads about in the
 * README, the docs, the systemd unit or the Docker files exists, every log message the
 * troubleshooting table tells them to look for is one ncps writes, and every local link resolves.
 */
const root = join(__dirname, '../../..');
const read = (path: string) => readFileSync(join(root, path), 'utf8');

const DOCUMENTS = [
  'README.md',
  ...readdirSync(join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
  'config/systemd/ncps.service',
  'docker/Dockerfile',
  'docker/compose.yaml',
  'docker/compose.ha.yaml',
];

const FLAGS = new Set(OPTIONS.map((o) => o.flag));
const ENVS = new Set(OPTIONS.map((o) => o.env));

/** Words shaped like ncps options (`--cache-...`, `CACHE_...`); a trailing `-`/`_` is a wildcard (`--cache-storage-s3-*`). */
const FLAG_WORD = /--((?:cache|server|log|prometheus|netrc|otel)-[a-z0-9-]+|config)(?![a-z0-9-])/g;
const ENV_WORD = /\b((?:CACHE|SERVER|PROMETHEUS|NETRC|NCPS)_[A-Z0-9_]+|LOG_LEVEL)(?![A-Z0-9_])/g;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.spec.ts') ? [path] : [];
  });
}

describe.each(DOCUMENTS)('%s', (document) => {
  const text = read(document);

  it('names only flags and environment variables of the option table', () => {
    const flags = [...text.matchAll(FLAG_WORD)].map((m) => m[1]).filter((f) => !f.endsWith('-'));
    const envs = [...text.matchAll(ENV_WORD)].map((m) => m[1]).filter((e) => !e.endsWith('_'));
    expect({
      unknownFlags: [...new Set(flags.filter((f) => !FLAGS.has(f)))],
      // NCPS_DOCKER_* / NCPS_TEST_* configure the test scripts, not ncps.
      unknownEnvs: [...new Set(envs.filter((e) => !ENVS.has(e) && !/^NCPS_(DOCKER|TEST)_/.test(e)))],
    }).toEqual({
      unknownFlags: [],
      unknownEnvs: [],
    });
  });

  it('links only to files that exist', () => {
    const targets = [...text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)].map((m) => m[1]).filter((t) => !/^[a-z]+:/.test(t));
    expect(targets.filter((t) => !existsSync(join(root, dirname(document), t)))).toEqual([]);
  });
});

describe('README troubleshooting', () => {
  const readme = read('README.md');
  const section = readme.slice(readme.indexOf('### Troubleshooting'), readme.indexOf('### Running as a systemd service'));
  const messages = [...section.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]);
  const source = sourceFiles(join(root, 'src'))
    .map((f) => readFileSync(f, 'utf8'))
    .join('\n');

  it('covers the documented lock log messages', () => {
    expect(messages).toEqual(
      expect.arrayContaining([
        'acquired download lock',
        'failed to acquire lock',
        'another instance is running LRU',
        'circuit breaker open: Redis is unavailable',
        'using local locks',
      ]),
    );
  });

  it('lists only messages ncps writes', () => {
    // Messages naming the lock backend are templates in the source (`${name}` is Redis or PostgreSQL).
    const written = (message: string) =>
      source.includes(`'${message}'`) || source.includes(message.replace(/\b(Redis|PostgreSQL)\b/, '${name}'));
    expect(messages.filter((m) => !written(m))).toEqual([]);
  });
});
