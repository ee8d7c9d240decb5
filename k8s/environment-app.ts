import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, type Chart, Yaml } from 'cdk8s';
import { stringify } from 'yaml';
import { BackendChart } from './backend-chart.ts';
import {
  BackupChart,
  BackupScriptError,
  BackupShellChart,
  BackupVolumeChart,
  RestoreChart,
  type InClusterEnvironment,
} from './backup-chart.ts';
import {
  connectionBudgetProblem,
  maxConnectionsFromStatefulSet,
  postgresContainerFromStatefulSet,
  serverSettingsFromStatefulSet,
  type StatefulSetArgs,
} from './connection-budget.ts';
import { EnvironmentError, type Environment, type EnvironmentSettings } from './environment.ts';
import { placeholders } from './environment-rules.ts';
import type { SynthOverrides } from './overrides.ts';
import { resolveEnvironment } from './resolve-environment.ts';
import { MonitoringChart } from './monitoring-chart.ts';
import { NamespaceChart } from './namespace-chart.ts';
import { PostgresChart } from './postgres-chart.ts';
import { postgresMemoryProblem } from './postgres-memory.ts';
import { SecretChart } from './secret-chart.ts';

/**
 * What `npm run synth` writes for one environment, folder by folder. Each folder holds one file per
 * chart, numbered in apply order, and a kustomization.yaml listing them, so `kubectl apply -k` works
 * on every folder:
 *
 *   <env>/setup/         applied once: Namespace, default deny, backup volume, Secret source.
 *                        Deleting it deletes the data: never `kubectl delete` this folder.
 *   <env>/               applied on every release: everything else. Deleting it keeps the data.
 *   <env>/backup-shell/  on demand: a pod to list, copy off and copy in dumps.
 *   <env>/restore/       only with K8S_RESTORE_DUMP: a Job restoring that dump.
 */
export interface OutputFolder {
  /** Relative to the environment's folder; '' is the release folder itself. */
  readonly path: string;
  /** One line for kustomization.yaml and the README. */
  readonly purpose: string;
  readonly files: readonly { readonly name: string; readonly yaml: string }[];
}

export interface EnvironmentOutput {
  readonly env: Environment;
  readonly folders: readonly OutputFolder[];
  /** Placeholders still in the settings (see `placeholders`). */
  readonly warnings: readonly string[];
}

export interface BuildOptions {
  readonly overrides?: SynthOverrides;
  /** A dump file name: adds the restore/ folder. */
  readonly restoreDump?: string;
}

const purposes = {
  setup:
    'Applied once, before the first release; re-apply when it changes. NEVER `kubectl delete` it: that deletes the Namespace, the volumes and the data on them.',
  release:
    'Applied on every release (after setup/). `kubectl delete -k` on this folder removes the workloads and keeps the data.',
  'backup-shell':
    'On demand: a pod to list dumps, take one now, copy dumps off the cluster or copy one in. Delete it when done.',
  restore:
    'On demand: restores one dump with backup.sh restore. Read k8s/README.md "Restore" first.',
} as const;

/**
 * Builds and checks one environment in memory. Throws EnvironmentError (settings), or a cdk8s
 * "Validation failed" error (the connection and memory budgets, read back from the synthesized
 * StatefulSet).
 */
export function buildEnvironment(
  settings: EnvironmentSettings,
  options: BuildOptions = {},
): EnvironmentOutput {
  const env = resolveEnvironment(settings, options.overrides);
  const inCluster = env.database.mode === 'in-cluster' ? (env as InClusterEnvironment) : undefined;
  const backup = inCluster?.database.backup ? inCluster : undefined;
  if (options.restoreDump !== undefined && !backup) {
    throw new EnvironmentError(env.name, [
      'K8S_RESTORE_DUMP: this environment has no in-cluster database with backups to restore into',
    ]);
  }

  const setup = new App();
  new NamespaceChart(setup, 'namespace', { env });
  if (backup) new BackupVolumeChart(setup, 'backup-volume', { env: backup });
  if (env.secret.source !== 'manual') new SecretChart(setup, 'secret', { env });

  const release = new App();
  const postgres = inCluster
    ? new PostgresChart(release, 'postgres', { env, database: inCluster.database })
    : undefined;
  if (backup) new BackupChart(release, 'backup', { env: backup });
  const backend = new BackendChart(release, 'backend', { env });
  if (env.monitoring.prometheusOperator) {
    new MonitoringChart(release, 'monitoring', {
      env,
      releaseLabel: env.monitoring.prometheusOperator.releaseLabel,
    });
  }
  // Checked at synth against the StatefulSet as synthesized, not against the settings it came from.
  backend.node.addValidation({
    validate: () => budgetProblems(env, postgres?.statefulSet.toJson() as StatefulSetArgs),
  });

  const apps: [keyof typeof purposes, string, App][] = [
    ['setup', 'setup', setup],
    ['release', '', release],
  ];
  if (backup) {
    const shell = new App();
    new BackupShellChart(shell, 'backup-shell', { env: backup });
    apps.push(['backup-shell', 'backup-shell', shell]);
  }
  if (backup && options.restoreDump !== undefined) {
    const restore = new App();
    new RestoreChart(restore, 'restore', { env: backup, dump: options.restoreDump });
    apps.push(['restore', 'restore', restore]);
  }

  const folders = apps.map(([kind, path, app]) => {
    app.synthYaml(); // resolves and runs the validations
    return {
      path,
      purpose: purposes[kind],
      files: app.charts.map((chart: Chart, i) => ({
        name: `${String(i).padStart(4, '0')}-${chart.node.id}.k8s.yaml`,
        yaml: Yaml.stringify(...(chart.toJson() as unknown[])),
      })),
    };
  });
  return { env, folders, warnings: placeholders(env) };
}

function budgetProblems(env: Environment, statefulSet: StatefulSetArgs | undefined): string[] {
  const problems: string[] = [];
  const maxConnections = statefulSet
    ? maxConnectionsFromStatefulSet(statefulSet)
    : env.database.maxConnections;
  if (maxConnections === undefined) {
    return [
      'the PostgreSQL StatefulSet does not set -c max_connections=N, so the connection budget cannot be checked',
    ];
  }
  const connections = connectionBudgetProblem({
    maxReplicas: env.backend.autoscaling?.maxReplicas ?? env.backend.replicas,
    maxSurge: env.backend.maxSurge,
    poolMax: env.backend.poolMax,
    reservedConnections: env.database.reservedConnections,
    maxConnections,
    maxConnectionsSource: statefulSet
      ? 'from the StatefulSet args'
      : 'as declared for the external database',
  });
  if (connections) problems.push(connections);
  if (statefulSet) {
    const settings = serverSettingsFromStatefulSet(statefulSet);
    const mib = (name: string) => {
      const match = /^(\d+)MB$/.exec(settings.get(name) ?? '');
      return match ? Number(match[1]) : undefined;
    };
    const memoryLimit =
      postgresContainerFromStatefulSet(statefulSet)?.resources?.limits?.['memory'];
    const limit = /^(\d+)Mi$/.exec(typeof memoryLimit === 'string' ? memoryLimit : '')?.[1];
    const [sharedBuffersMiB, workMemMiB, maintenanceWorkMemMiB] = [
      'shared_buffers',
      'work_mem',
      'maintenance_work_mem',
    ].map(mib);
    if (
      limit === undefined ||
      sharedBuffersMiB === undefined ||
      workMemMiB === undefined ||
      maintenanceWorkMemMiB === undefined
    ) {
      problems.push(
        'the PostgreSQL StatefulSet does not set a memory limit in Mi and shared_buffers, work_mem and maintenance_work_mem in MB, so the memory budget cannot be checked',
      );
    } else {
      const memory = postgresMemoryProblem({
        memoryLimitMiB: Number(limit),
        maxConnections,
        settings: { sharedBuffersMiB, workMemMiB, maintenanceWorkMemMiB },
      });
      if (memory) problems.push(memory);
    }
  }
  return problems.map((problem) => `environment "${env.name}": ${problem}`);
}

/** kustomization.yaml for a folder: its files, in apply order. */
export function kustomization(folder: OutputFolder): string {
  return (
    `# ${folder.purpose}\n` +
    stringify({
      apiVersion: 'kustomize.config.k8s.io/v1beta1',
      kind: 'Kustomization',
      resources: folder.files.map((file) => file.name),
    })
  );
}

/** Every environment's problems, reported together so one synth run shows all of them. */
export class SynthError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(problems.join('\n'));
    this.name = 'SynthError';
  }
}

export interface SynthOptions extends BuildOptions {
  readonly outdir: string;
  /** Refuse placeholders (example.com hosts, the ghcr.io/example image) instead of warning. */
  readonly strict?: boolean;
}

/**
 * Builds and checks every environment before writing any, so a bad one leaves no half-written
 * output behind; then replaces each environment's folder under <outdir>. Returns what it wrote
 * and the placeholder warnings (printed by main.ts).
 */
export function synthEnvironments(
  environments: readonly EnvironmentSettings[],
  options: SynthOptions,
): { readonly written: string[]; readonly warnings: string[] } {
  const outputs = buildEnvironments(environments, options);
  const written: string[] = [];
  for (const output of outputs) {
    const envDir = join(options.outdir, output.env.name);
    rmSync(envDir, { recursive: true, force: true });
    for (const folder of output.folders) {
      const dir = join(envDir, folder.path);
      mkdirSync(dir, { recursive: true });
      for (const file of folder.files) writeFileSync(join(dir, file.name), file.yaml);
      writeFileSync(join(dir, 'kustomization.yaml'), kustomization(folder));
      written.push(dir);
    }
  }
  return { written, warnings: outputs.flatMap((output) => output.warnings) };
}

/** Builds every environment or throws one SynthError naming every problem of every environment. */
export function buildEnvironments(
  environments: readonly EnvironmentSettings[],
  options: BuildOptions & { readonly strict?: boolean },
): EnvironmentOutput[] {
  const outputs: EnvironmentOutput[] = [];
  const problems: string[] = [];
  for (const settings of environments) {
    try {
      const output = buildEnvironment(settings, options);
      if (options.strict) problems.push(...output.warnings.map((w) => `${w} (strict mode)`));
      outputs.push(output);
    } catch (error) {
      if (!isConfigurationError(error)) throw error;
      problems.push(error.message);
    }
  }
  if (problems.length > 0) throw new SynthError(problems);
  return outputs;
}

/**
 * One folder's objects as a single YAML stream, documents separated by `---`: what
 * `cdk8s synth --stdout` should print but does not (cdk8s-cli 2.207 concatenates files without a
 * separator, and deletes the output folder).
 */
export function folderStream(output: EnvironmentOutput, path: string): string {
  const folder = output.folders.find((f) => f.path === path);
  if (!folder) {
    const known = output.folders.map((f) => `${output.env.name}${f.path ? `/${f.path}` : ''}`);
    throw new SynthError([
      `no folder "${path}" in environment ${output.env.name} (there are: ${known.join(', ')})`,
    ]);
  }
  return folder.files.map((file) => file.yaml.replace(/\n*$/, '\n')).join('---\n');
}

function isConfigurationError(error: unknown): error is Error {
  // cdk8s reports failed construct validations (the budgets) with this prefix.
  return (
    error instanceof EnvironmentError ||
    error instanceof BackupScriptError ||
    (error instanceof Error && error.message.startsWith('Validation failed'))
  );
}
