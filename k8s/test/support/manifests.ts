import { Yaml } from 'cdk8s';
import { parseAllDocuments } from 'yaml';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IStatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IPodSpec } from 'kubernetes-models/v1/PodSpec';
import type { IPodTemplateSpec } from 'kubernetes-models/v1/PodTemplateSpec';
import type { IPod } from 'kubernetes-models/v1/Pod';
import type { ICronJob } from 'kubernetes-models/batch/v1/CronJob';
import type { IJob } from 'kubernetes-models/batch/v1/Job';
import {
  buildEnvironment,
  type BuildOptions,
  type EnvironmentOutput,
} from '../../environment-app.ts';
import type { Environment, EnvironmentSettings } from '../../environment.ts';
import { backupNames } from '../../names.ts';
import { environments } from '../../environments/index.ts';

/** One synthesized object, as `kubectl apply` would read it. */
export interface KubeObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: {
    readonly name: string;
    readonly namespace?: string;
    readonly labels?: Record<string, string>;
    readonly annotations?: Record<string, string>;
  };
  readonly [field: string]: unknown;
}

export interface Synthesized {
  readonly env: Environment;
  readonly output: EnvironmentOutput;
  /** Every folder's YAML, setup first, with a header per file: what the snapshot records. */
  readonly yaml: string;
  /** Every object of every folder. */
  readonly objects: readonly KubeObject[];
  /** The objects of one folder ('' is the release folder). */
  readonly folder: (path: string) => readonly KubeObject[];
}

export function parseObjects(yaml: string): KubeObject[] {
  return parseAllDocuments(yaml)
    .map((doc) => doc.toJS() as KubeObject | null)
    .filter((object): object is KubeObject => object !== null);
}

/**
 * The snapshot leaves the backup script's text out of its ConfigMap: the script has its own owner
 * and tests (backup.test.ts checks the ConfigMap against the file byte for byte), and an edit to it
 * should not read as a change to the manifests.
 */
function withoutScript(yaml: string): string {
  const objects = parseObjects(yaml);
  const script = objects.find(
    (o) => o.kind === 'ConfigMap' && o.metadata.name === backupNames.scriptConfigMap,
  ) as (KubeObject & { data: Record<string, string> }) | undefined;
  if (!script) return yaml;
  script.data[backupNames.scriptKey] = '<backup/backup.sh, byte for byte>';
  return Yaml.stringify(...objects);
}

/** Synthesizes one environment in memory (nothing is written), exactly as `npm run synth` would. */
export function synthesize(settings: EnvironmentSettings, options: BuildOptions = {}): Synthesized {
  const output = buildEnvironment(settings, options);
  const byFolder = new Map(
    output.folders.map((folder) => [
      folder.path,
      folder.files.flatMap((file) => parseObjects(file.yaml)),
    ]),
  );
  const yaml = output.folders
    .flatMap((folder) =>
      folder.files.map(
        (file) =>
          `# ${[output.env.name, folder.path, file.name].filter(Boolean).join('/')}\n${withoutScript(file.yaml)}`,
      ),
    )
    .join('');
  return {
    env: output.env,
    output,
    yaml,
    objects: [...byFolder.values()].flat(),
    folder: (path) => byFolder.get(path) ?? [],
  };
}

/** Every environment `npm run synth` writes, synthesized once per test file. */
export const synthesizedEnvironments: readonly Synthesized[] = environments.map((settings) =>
  synthesize(settings),
);

export function ofKind<T>(objects: readonly KubeObject[], kind: string): (T & KubeObject)[] {
  return objects.filter((object) => object.kind === kind) as (T & KubeObject)[];
}

export function find<T>(
  objects: readonly KubeObject[],
  kind: string,
  name: string,
): T & KubeObject {
  const found = ofKind<T>(objects, kind).find((object) => object.metadata.name === name);
  if (!found) throw new Error(`no ${kind} named ${name}`);
  return found;
}

/** A workload's pod template with enough context to check and to evaluate policies against. */
export interface PodTemplate {
  readonly owner: string;
  readonly kind: 'Deployment' | 'StatefulSet' | 'CronJob' | 'Job' | 'Pod';
  /** Serves traffic for as long as it runs (probes, PDB and spread apply), unlike a batch pod. */
  readonly longRunning: boolean;
  readonly namespace: string;
  readonly replicasAtMost: number;
  readonly labels: Record<string, string>;
  readonly annotations: Record<string, string>;
  readonly spec: IPodSpec;
  readonly containers: readonly IContainer[];
}

/** Every pod any object would create: workloads' templates, CronJobs' job templates, bare Pods. */
export function podTemplates(objects: readonly KubeObject[]): PodTemplate[] {
  const hpaMax = new Map(
    ofKind<{ spec: { scaleTargetRef: { name: string }; maxReplicas: number } }>(
      objects,
      'HorizontalPodAutoscaler',
    ).map((hpa) => [hpa.spec.scaleTargetRef.name, hpa.spec.maxReplicas]),
  );
  const templates: (readonly [
    KubeObject,
    PodTemplate['kind'],
    IPodTemplateSpec | undefined,
    number,
  ])[] = [
    ...ofKind<IDeployment>(objects, 'Deployment').map(
      (d) =>
        [
          d,
          'Deployment',
          d.spec?.template,
          hpaMax.get(d.metadata.name) ?? d.spec?.replicas ?? 1,
        ] as const,
    ),
    ...ofKind<IStatefulSet>(objects, 'StatefulSet').map(
      (s) => [s, 'StatefulSet', s.spec?.template, s.spec?.replicas ?? 1] as const,
    ),
    ...ofKind<ICronJob>(objects, 'CronJob').map(
      (c) => [c, 'CronJob', c.spec?.jobTemplate.spec?.template, 1] as const,
    ),
    ...ofKind<IJob>(objects, 'Job').map((j) => [j, 'Job', j.spec?.template, 1] as const),
    ...ofKind<IPod>(objects, 'Pod').map(
      (p) => [p, 'Pod', { metadata: p.metadata, spec: p.spec }, 1] as const,
    ),
  ];
  return templates.map(([object, kind, template, replicasAtMost]) => {
    if (!template?.spec) throw new Error(`${kind}/${object.metadata.name} has no pod spec`);
    return {
      owner: `${kind}/${object.metadata.name}`,
      kind,
      longRunning: kind === 'Deployment' || kind === 'StatefulSet',
      namespace: object.metadata.namespace ?? 'default',
      replicasAtMost,
      labels: template.metadata?.labels ?? {},
      annotations: template.metadata?.annotations ?? {},
      spec: template.spec,
      containers: [...(template.spec.initContainers ?? []), ...template.spec.containers],
    };
  });
}

export function configMapData(
  objects: readonly KubeObject[],
  name: string,
): Record<string, string> {
  return find<IConfigMap>(objects, 'ConfigMap', name).data ?? {};
}

/** matchLabels only: enough for the selectors these charts write (the evaluator does the rest). */
export function matchesLabels(
  selector: Record<string, string> | undefined,
  labels: Record<string, string>,
): boolean {
  return Object.entries(selector ?? {}).every(([key, value]) => labels[key] === value);
}
