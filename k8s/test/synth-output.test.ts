import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { SynthError, synthEnvironments } from '../environment-app.ts';
import { environments } from '../environments/index.ts';
import { production } from '../environments/production.ts';
import { synthesizedEnvironments } from './support/manifests.ts';

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'k8s-synth-'));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('npm run synth output', () => {
  it('writes one folder per environment, one file per chart, Namespace first for kubectl apply -f <folder>', () => {
    const outdir = tempDir();
    synthEnvironments(environments, { outdir });
    expect(readdirSync(outdir).sort()).toEqual(['dev', 'production', 'staging']);
    expect(readdirSync(join(outdir, 'production'))).toEqual([
      '0000-namespace.k8s.yaml',
      '0001-postgres.k8s.yaml',
      '0002-backend.k8s.yaml',
      '0003-monitoring.k8s.yaml',
    ]);
    expect(readdirSync(join(outdir, 'staging'))).toEqual([
      '0000-namespace.k8s.yaml',
      '0001-backend.k8s.yaml',
      '0002-monitoring.k8s.yaml',
    ]);
    const first = parseAllDocuments(
      readFileSync(join(outdir, 'dev', '0000-namespace.k8s.yaml'), 'utf8'),
    );
    expect((first[0]?.toJS() as { kind: string }).kind).toBe('Namespace');
  });

  it('when one environment is invalid, then nothing is written and every problem is reported', () => {
    const outdir = tempDir();
    const broken = [
      { ...production, name: 'a', image: { ...production.image, tag: 'latest' } },
      { ...production, name: 'b', backend: { ...production.backend, poolMax: 50 } },
    ];
    let caught: unknown;
    try {
      synthEnvironments([...environments, ...broken], { outdir });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(SynthError);
    expect((caught as SynthError).problems).toHaveLength(2);
    expect((caught as SynthError).message).toMatch(
      /environment "a" is invalid[\s\S]*environment "b": connection budget exceeded/,
    );
    expect(readdirSync(outdir)).toEqual([]);
  });
});

describe('snapshot of what gets applied', () => {
  it.each(synthesizedEnvironments)('$env.name', async ({ env, yaml }) => {
    await expect(yaml).toMatchFileSnapshot(`./__snapshots__/${env.name}.k8s.yaml`);
  });
});
