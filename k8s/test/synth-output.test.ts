import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { repoRoot } from '../../backend/test/support/processes.ts';
import {
  buildEnvironment,
  folderStream,
  SynthError,
  synthEnvironments,
} from '../environment-app.ts';
import { environments } from '../environments/index.ts';
import { production } from '../environments/production.ts';
import { staging } from '../environments/staging.ts';
import { parseObjects, synthesizedEnvironments } from './support/manifests.ts';

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'k8s-synth-'));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const real = {
  imageRepository: 'ghcr.io/acme/tasks-backend',
  host: 'tasks.acme.io',
} as const;

describe('npm run synth output', () => {
  it('writes, per environment, setup/ (applied once), the release folder and backup-shell/, each with a kustomization.yaml in apply order', () => {
    const outdir = tempDir();
    synthEnvironments(environments, { outdir });
    expect(readdirSync(outdir).sort()).toEqual(['dev', 'production', 'staging']);
    const list = (path: string) => readdirSync(join(outdir, path)).sort();
    expect(list('production')).toEqual([
      '0000-postgres.k8s.yaml',
      '0001-backup.k8s.yaml',
      '0002-backend.k8s.yaml',
      '0003-monitoring.k8s.yaml',
      'backup-shell',
      'kustomization.yaml',
      'setup',
    ]);
    expect(list('production/setup')).toEqual([
      '0000-namespace.k8s.yaml',
      '0001-backup-volume.k8s.yaml',
      'kustomization.yaml',
    ]);
    expect(list('production/backup-shell')).toEqual([
      '0000-backup-shell.k8s.yaml',
      'kustomization.yaml',
    ]);
    // An external database: nothing to back up, no volume to keep.
    expect(list('staging')).toEqual([
      '0000-backend.k8s.yaml',
      '0001-monitoring.k8s.yaml',
      'kustomization.yaml',
      'setup',
    ]);
    expect(list('staging/setup')).toEqual(['0000-namespace.k8s.yaml', 'kustomization.yaml']);

    const kustomization = parse(
      readFileSync(join(outdir, 'production/kustomization.yaml'), 'utf8'),
    );
    expect(kustomization).toEqual({
      apiVersion: 'kustomize.config.k8s.io/v1beta1',
      kind: 'Kustomization',
      resources: [
        '0000-postgres.k8s.yaml',
        '0001-backup.k8s.yaml',
        '0002-backend.k8s.yaml',
        '0003-monitoring.k8s.yaml',
      ],
    });
    expect(readFileSync(join(outdir, 'production/setup/kustomization.yaml'), 'utf8')).toMatch(
      /^# Applied once.*NEVER `kubectl delete` it/,
    );
  });

  it('what deleting each folder removes: setup/ holds the Namespace and every standalone volume; the release folder none of them', () => {
    for (const { output } of synthesizedEnvironments) {
      const kindsIn = (path: string) =>
        output.folders
          .filter((f) => f.path === path)
          .flatMap((f) => f.files.flatMap((file) => parseObjects(file.yaml)))
          .map((o) => o.kind);
      expect(kindsIn('setup')[0]).toBe('Namespace');
      for (const path of ['', 'backup-shell', 'restore']) {
        expect(kindsIn(path)).not.toContain('Namespace');
        expect(kindsIn(path)).not.toContain('PersistentVolumeClaim');
      }
      // The database's own claim comes from the StatefulSet's template, which keeps it on delete.
      const sts = output.folders
        .find((f) => f.path === '')
        ?.files.flatMap((f) => parseObjects(f.yaml))
        .find((o) => o.kind === 'StatefulSet') as
        { spec: { persistentVolumeClaimRetentionPolicy: unknown } } | undefined;
      if (sts) {
        expect(sts.spec.persistentVolumeClaimRetentionPolicy).toEqual({
          whenDeleted: 'Retain',
          whenScaled: 'Retain',
        });
      }
    }
  });

  it('replaces an environment folder on every synth, so a folder no longer produced (restore/) does not linger', () => {
    const outdir = tempDir();
    synthEnvironments([production], { outdir, restoreDump: 'tasks-20261130T120000Z.dump' });
    expect(existsSync(join(outdir, 'production/restore/0000-restore.k8s.yaml'))).toBe(true);
    synthEnvironments([production], { outdir });
    expect(existsSync(join(outdir, 'production/restore'))).toBe(false);
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

  it('production with the example placeholders warns, naming each; strict mode refuses them; real values pass both', () => {
    const { warnings } = synthEnvironments([production], { outdir: tempDir() });
    expect(warnings).toEqual([
      'environment "production": placeholder image repository ghcr.io/example/tasks-backend (set IMAGE_REPOSITORY)',
      'environment "production": placeholder host tasks.example.com (set K8S_HOST)',
    ]);
    const outdir = tempDir();
    expect(() => synthEnvironments([production], { outdir, strict: true })).toThrow(
      /placeholder image repository[\s\S]*\(strict mode\)\n.*placeholder host tasks\.example\.com/,
    );
    expect(readdirSync(outdir)).toEqual([]);
    const ok = synthEnvironments([production], { outdir, strict: true, overrides: real });
    expect(ok.warnings).toEqual([]);
  });

  it('the Ingress option names its TLS secret placeholder too', () => {
    const output = buildEnvironment(staging, {
      overrides: { imageRepository: real.imageRepository, tlsSecret: 'tasks-example-com-tls' },
    });
    expect(output.warnings).toEqual([
      'environment "staging": placeholder host tasks-staging.example.com (set K8S_HOST)',
      'environment "staging": placeholder TLS secret tasks-example-com-tls (set K8S_TLS_SECRET)',
    ]);
  });
});

describe('a single YAML stream of one folder (what `cdk8s synth --stdout` gets wrong)', () => {
  it('separates every document with ---, across chart files, and holds exactly the folder objects', () => {
    const output = buildEnvironment(production);
    const stream = folderStream(output, '');
    const release = output.folders.find((f) => f.path === '')!;
    expect(release.files.length).toBeGreaterThan(1);
    const objects = parseObjects(stream);
    expect(objects).toEqual(release.files.flatMap((f) => parseObjects(f.yaml)));
    // The file boundaries are where cdk8s-cli's --stdout drops the separator: one object per document.
    const documents = stream.split(/^---\n/m);
    expect(documents).toHaveLength(objects.length);
    for (const document of documents) expect(parseObjects(document)).toHaveLength(1);
  });

  it('names the folders there are when asked for one that is not', () => {
    expect(() => folderStream(buildEnvironment(staging), 'backup-shell')).toThrow(
      'no folder "backup-shell" in environment staging (there are: staging/setup, staging)',
    );
  });
});

describe('k8s/main.ts as npm run synth runs it', () => {
  const run = (args: string[], env: Record<string, string>) =>
    spawnSync(process.execPath, ['--import', 'tsx', 'k8s/main.ts', ...args], {
      cwd: repoRoot,
      encoding: 'utf8',
      env: { PATH: process.env['PATH'] ?? '', ...env },
      timeout: 60_000,
    });

  it('writes the selected environment with the variables applied and prints the placeholders left', () => {
    const outdir = tempDir();
    const result = run([], {
      CDK8S_OUTDIR: outdir,
      SYNTH_ENVIRONMENTS: 'production',
      IMAGE_TAG: '1.4.2',
      K8S_EXPOSE: 'ingress',
      K8S_INGRESS_CLASS: 'traefik',
      K8S_HOST: 'tasks.acme.io',
    });
    expect(result.status, result.stderr).toBe(0);
    expect(readdirSync(outdir)).toEqual(['production']);
    expect(result.stderr).toContain(
      'warning: environment "production": placeholder image repository ghcr.io/example/tasks-backend (set IMAGE_REPOSITORY)',
    );
    const objects = parseObjects(
      readFileSync(join(outdir, 'production/0002-backend.k8s.yaml'), 'utf8'),
    );
    const ingress = objects.find((o) => o.kind === 'Ingress') as any;
    expect(ingress.spec.ingressClassName).toBe('traefik');
    expect(ingress.spec.rules[0].host).toBe('tasks.acme.io');
    expect(objects.find((o) => o.kind === 'HTTPRoute')).toBeUndefined();
    const deployment = objects.find((o) => o.kind === 'Deployment') as any;
    expect(deployment.spec.template.spec.containers[0].image).toBe(
      'ghcr.io/example/tasks-backend:1.4.2',
    );
  });

  it('in strict mode with a bad variable, exits 1 naming every problem and writes nothing', () => {
    const outdir = tempDir();
    const result = run([], {
      CDK8S_OUTDIR: outdir,
      SYNTH_STRICT: 'true',
      IMAGE_TAG: 'latest',
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/synth failed:/);
    expect(result.stderr).toMatch(
      /environment "production" is invalid:\n\s+- image tag "latest" is mutable/,
    );
    expect(result.stderr).toMatch(/environment "dev" is invalid/);
    expect(readdirSync(outdir)).toEqual([]);
  });

  it('--stdout prints one folder as a single stream and writes nothing', () => {
    const outdir = tempDir();
    const result = run(['--stdout', 'production/setup'], { CDK8S_OUTDIR: outdir });
    expect(result.status, result.stderr).toBe(0);
    expect(parseObjects(result.stdout).map((o) => o.kind)).toEqual([
      'Namespace',
      'NetworkPolicy',
      'PersistentVolumeClaim',
    ]);
    expect(readdirSync(outdir)).toEqual([]);
  });
});

describe('snapshot of what gets applied', () => {
  it.each(synthesizedEnvironments)('$env.name', async ({ env, yaml }) => {
    await expect(yaml).toMatchFileSnapshot(`./__snapshots__/${env.name}.k8s.yaml`);
  });
});
