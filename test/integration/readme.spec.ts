import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(__dirname, '../..');

/** The README's two opening commands are what a newcomer pastes; CI must run the same test line. */
describe('README commands', () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const commands = /```sh\n([^\n]+)\n([^\n]+)\n```/.exec(readme);
  const strip = (line: string) => line.replace(/\s+#.*$/, '').trim();

  it('opens with a serve line and a test line', () => {
    expect(commands).not.toBeNull();
    expect(strip(commands![1])).toMatch(/npm start$/);
    expect(strip(commands![2])).toMatch(/npm test$/);
  });

  it('is what .ci/run executes', () => {
    const ci = readFileSync(join(root, '.ci/run'), 'utf8')
      .split('\n')
      .map((l) => l.trim());
    expect(ci).toContain(strip(commands![2]));
  });

  it('starts the server with `serve` and no flags', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
    expect(pkg.scripts.start).toBe('node dist/src/main.js serve');
  });
});
