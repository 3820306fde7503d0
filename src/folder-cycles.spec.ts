import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { preProcessFile } from 'typescript';

/**
 * The domain folders of src/ must depend on each other one way only. madge (npm run lint:cycles) sees
 * file cycles; a folder cycle made of files that never import each other in a circle passes it, and
 * leaves two domains that cannot be understood, tested or moved apart. Every import counts here:
 * type-only ones, `export ... from`, `require()` and `import()` too. Files directly in src/ are one node.
 */

const ROOT_NODE = '(src)';

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return tsFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** The file an import names (`src/...` or relative), or undefined for a package or a file outside src/. */
function importedFile(srcDir: string, from: string, specifier: string): string | undefined {
  let base: string;
  if (specifier === 'src' || specifier.startsWith('src/')) base = join(dirname(srcDir), specifier);
  else if (specifier.startsWith('.')) base = resolve(dirname(from), specifier);
  else return undefined;
  if (relative(srcDir, base).startsWith('..')) return undefined;
  const isFile = (path: string) => existsSync(path) && statSync(path).isFile();
  return [`${base}.ts`, join(base, 'index.ts'), base].find(isFile) ?? `${base}.ts`;
}

function folderOf(srcDir: string, file: string): string {
  const parts = relative(srcDir, file).split(sep);
  return parts.length === 1 ? ROOT_NODE : parts[0];
}

/** For each folder, the folders it imports, each with the first import that makes the edge (for the message). */
function folderGraph(srcDir: string): Map<string, Map<string, string>> {
  const graph = new Map<string, Map<string, string>>();
  for (const file of tsFiles(srcDir)) {
    const from = folderOf(srcDir, file);
    for (const { fileName } of preProcessFile(readFileSync(file, 'utf8'), true, true).importedFiles) {
      const target = importedFile(srcDir, file, fileName);
      const to = target === undefined ? from : folderOf(srcDir, target);
      if (to === from) continue;
      const edges = graph.get(from) ?? new Map<string, string>();
      if (!edges.has(to)) edges.set(to, `${relative(srcDir, file)} imports '${fileName}'`);
      graph.set(from, edges);
    }
  }
  return graph;
}

/**
 * The shortest cycle through each folder on one, unless an earlier cycle already showed that folder: `a -> b -> a`,
 * with the import behind each step.
 */
function folderCycles(srcDir: string): string[] {
  const graph = folderGraph(srcDir);
  const next = (folder: string) => [...(graph.get(folder)?.keys() ?? [])].sort();
  const reaches = (from: string, to: string): string[] | undefined => {
    const seen = new Set<string>([from]);
    const queue: string[][] = [[from]];
    for (let path = queue.shift(); path; path = queue.shift()) {
      for (const folder of next(path[path.length - 1])) {
        if (folder === to) return [...path, folder];
        if (!seen.has(folder)) {
          seen.add(folder);
          queue.push([...path, folder]);
        }
      }
    }
    return undefined;
  };
  const reported = new Set<string>();
  const cycles: string[] = [];
  for (const folder of [...graph.keys()].sort()) {
    if (reported.has(folder)) continue;
    const cycle = reaches(folder, folder);
    if (!cycle) continue;
    cycle.forEach((member) => reported.add(member));
    const steps = cycle.slice(1).map((to, i) => `  ${cycle[i]} -> ${to}: ${graph.get(cycle[i])?.get(to)}`);
    cycles.push([cycle.join(' -> '), ...steps].join('\n'));
  }
  return cycles;
}

describe('folder dependencies of src/', () => {
  it('have no cycle', () => {
    const sut = folderCycles(__dirname);

    expect(sut).toEqual([]);
  });

  describe('the check', () => {
    let srcDir: string;
    const write = (path: string, text: string) => {
      mkdirSync(dirname(join(srcDir, path)), { recursive: true });
      writeFileSync(join(srcDir, path), text);
    };

    beforeEach(() => {
      srcDir = join(mkdtempSync(join(tmpdir(), 'folder-cycles-')), 'src');
      write('main.ts', "import { b } from 'src/beta';\n");
      write('alpha/index.ts', "export { a } from './a';\n");
      write('alpha/a.ts', "import type { B } from 'src/beta/b';\nexport const a = 1;\n");
      write('beta/index.ts', "export { b } from './b';\n");
      write('beta/b.ts', "import { a } from '../alpha';\nexport type B = number;\nexport const b = a;\n");
    });

    afterEach(() => rmSync(dirname(srcDir), { recursive: true, force: true }));

    it('names a cycle made by a type-only import, and the imports behind it', () => {
      const sut = folderCycles(srcDir);

      expect(sut).toEqual([
        [
          'alpha -> beta -> alpha',
          "  alpha -> beta: alpha/a.ts imports 'src/beta/b'",
          "  beta -> alpha: beta/b.ts imports '../alpha'",
        ].join('\n'),
      ]);
    });

    it('accepts folders that depend one way', () => {
      write('alpha/a.ts', 'export const a = 1;\n');

      const sut = folderCycles(srcDir);

      expect(sut).toEqual([]);
    });
  });
});
