import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { synthEnvironments } from '../environment-app.ts';
import { environments } from '../environments/index.ts';
import { ensureKubectl, kubectl } from './support/kubectl.ts';
import { parseObjects, synthesize, type KubeObject } from './support/manifests.ts';
import { optionVariants } from './support/variants.ts';

/**
 * kubectl itself reads what synth writes: `kubectl kustomize <folder>` (what `kubectl apply -k`
 * sends, without a cluster) must reproduce every object of every folder, unchanged, for every
 * environment and option. The binary is the official kubectl 1.35 (see support/kubectl.ts).
 */

const outdirs: string[] = [];
afterAll(() => {
  for (const dir of outdirs) rmSync(dir, { recursive: true, force: true });
});

beforeAll(() => {
  const started = Date.now();
  ensureKubectl();
  console.log(
    `kubectl ready in ${Date.now() - started} ms: ${kubectl(['version', '--client']).trim()}`,
  );
}, 300_000);

const key = (o: KubeObject) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
const byKey = (objects: readonly KubeObject[]) =>
  Object.fromEntries(objects.map((o) => [key(o), o]));

const cases = [
  ...environments.map((settings) => ({ label: settings.name, settings, options: {} })),
  ...optionVariants,
];

describe('kubectl 1.35 reads the synthesized folders', () => {
  it('reports its version as 1.35', () => {
    expect(kubectl(['version', '--client', '-o', 'json'])).toMatch(/"gitVersion": "v1\.35\./);
  });

  describe.each(cases)('$label', ({ settings, options }) => {
    const outdir = mkdtempSync(join(tmpdir(), 'k8s-kustomize-'));
    outdirs.push(outdir);
    synthEnvironments([settings], { outdir, ...options });
    const expected = synthesize(settings, options);
    const envDir = join(outdir, settings.name);

    it.each(expected.output.folders.map((f) => f.path))(
      'kubectl kustomize %j reproduces every object of that folder and nothing else',
      (path) => {
        const rendered = parseObjects(kubectl(['kustomize', join(envDir, path)]));
        const wanted = expected.folder(path);
        expect(rendered.length).toBe(wanted.length);
        expect(byKey(rendered)).toEqual(byKey(wanted));
        if (path === 'setup') expect(rendered[0]?.kind).toBe('Namespace');
      },
    );

    it('each folder holds a kustomization.yaml listing its files, and the setup, release and tool folders only', () => {
      const folders = readdirSync(envDir, { withFileTypes: true })
        .filter((e) => e.isDirectory())
        .map((e) => e.name)
        .sort();
      expect(folders).toEqual(
        expected.output.folders
          .map((f) => f.path)
          .filter(Boolean)
          .sort(),
      );
      for (const folder of expected.output.folders) {
        const files = readdirSync(join(envDir, folder.path)).filter((f) => f.endsWith('.yaml'));
        expect(files.sort()).toEqual(
          ['kustomization.yaml', ...folder.files.map((f) => f.name)].sort(),
        );
      }
    });
  });
});
