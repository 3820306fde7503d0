import madge from 'madge';
import { join } from 'node:path';

const ROOT = join(__dirname, '../..');

/** The domain of a file under src/: its top folder (`cache/download/x.ts` → `cache`). */
const domainOf = (file: string): string => (file.includes('/') ? file.split('/')[0] : '(root)');

/**
 * The import graph of src/ as madge reads it (the same as `npm run lint:cycles`): no module may
 * import itself through others, and metrics/ stays the bottom layer that every domain may use.
 */
describe('the import graph of src/', () => {
  let graph: Record<string, string[]>;
  let circular: string[][];

  beforeAll(async () => {
    const result = await madge(join(ROOT, 'src'), { fileExtensions: ['ts'], tsConfig: join(ROOT, 'tsconfig.json') });
    graph = result.obj();
    circular = result.circular();
  }, 120_000);

  it('reads the whole tree, path aliases included', () => {
    // Had `src/...` imports gone unresolved, the graph would have no edges between domains.
    expect(Object.keys(graph).length).toBeGreaterThan(200);
    expect(graph['cache/cache.module.ts']).toEqual(expect.arrayContaining(['database/index.ts', 'upstream/index.ts']));
  });

  it('has no import cycle', () => {
    expect(circular).toEqual([]);
  });

  it('keeps metrics/ free of the domains that register metrics on its registry', () => {
    const allowed = new Set(['metrics', 'config', 'common']);
    const imports = Object.entries(graph)
      .filter(([file]) => domainOf(file) === 'metrics')
      .flatMap(([file, deps]) => deps.filter((dep) => !allowed.has(domainOf(dep))).map((dep) => `${file} -> ${dep}`));
    expect(imports).toEqual([]);
  });
});
