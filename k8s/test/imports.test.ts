import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * The cdk8s app's modules form a tree: charts read settings and names, settings never read charts.
 * A cycle (even through `import type`) means two modules can only be understood together.
 */

const k8sDir = fileURLToPath(new URL('../', import.meta.url));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return ['test', 'dist'].includes(entry.name) ? [] : sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** Relative imports of a module, resolved to files: `import`, `import type` and `export ... from`. */
function localImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/^(?:import|export)\b[^;]*?\bfrom\s+'(\.[^']+)'/gms)].map((match) =>
    resolve(dirname(file), match[1]!),
  );
}

/** Every cycle, each as the chain of files that closes it. */
function importCycles(files: readonly string[]): string[][] {
  const graph = new Map(files.map((file) => [file, localImports(file)]));
  const cycles: string[][] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (file: string, chain: string[]): void => {
    if (state.get(file) === 'done') return;
    if (state.get(file) === 'visiting') {
      cycles.push([...chain.slice(chain.indexOf(file)), file]);
      return;
    }
    state.set(file, 'visiting');
    for (const next of graph.get(file) ?? []) if (graph.has(next)) visit(next, [...chain, file]);
    state.set(file, 'done');
  };
  for (const file of graph.keys()) visit(file, []);
  return cycles;
}

describe('k8s/ module graph', () => {
  const files = sourceFiles(k8sDir);

  it('the scanner sees the modules and their imports', () => {
    expect(files.map((f) => relative(k8sDir, f))).toEqual(
      expect.arrayContaining(['main.ts', 'environment.ts', 'backend-chart.ts', 'names.ts']),
    );
    expect(localImports(join(k8sDir, 'backend-chart.ts'))).toContain(join(k8sDir, 'names.ts'));
  });

  it('has no import cycle (k8s/backend-chart.ts and k8s/environment.ts used to import each other)', () => {
    const cycles = importCycles(files).map((cycle) =>
      cycle.map((file) => relative(k8sDir, file)).join(' -> '),
    );
    expect(cycles).toEqual([]);
  });
});
