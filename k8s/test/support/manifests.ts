import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IStatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IPodSpec } from 'kubernetes-models/v1/PodSpec';
import { createEnvironmentApp } from '../../environment-app.ts';
import {
  resolveEnvironment,
  type Environment,
  type EnvironmentSettings,
  type SynthOverrides,
} from '../../environment.ts';
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
  /** Every chart's YAML, in apply order: what the snapshot records. */
  readonly yaml: string;
  readonly objects: readonly KubeObject[];
}

/** Synthesizes one environment in memory (nothing is written), exactly as `npm run synth` would. */
export function synthesize(
  settings: EnvironmentSettings,
  overrides: SynthOverrides = {},
): Synthesized {
  const app = createEnvironmentApp(settings, {
    outdir: join(tmpdir(), 'k8s-test-unused'),
    overrides,
  });
  const yaml = app.synthYaml();
  const objects = parseAllDocuments(yaml)
    .map((doc) => doc.toJS() as KubeObject | null)
    .filter((object): object is KubeObject => object !== null);
  return { env: resolveEnvironment(settings, overrides), yaml, objects };
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
  readonly namespace: string;
  readonly replicasAtMost: number;
  readonly labels: Record<string, string>;
  readonly annotations: Record<string, string>;
  readonly spec: IPodSpec;
  readonly containers: readonly IContainer[];
}

export function podTemplates(objects: readonly KubeObject[]): PodTemplate[] {
  const hpaMax = new Map(
    ofKind<{ spec: { scaleTargetRef: { name: string }; maxReplicas: number } }>(
      objects,
      'HorizontalPodAutoscaler',
    ).map((hpa) => [hpa.spec.scaleTargetRef.name, hpa.spec.maxReplicas]),
  );
  const workloads = [
    ...ofKind<IDeployment>(objects, 'Deployment'),
    ...ofKind<IStatefulSet>(objects, 'StatefulSet'),
  ];
  return workloads.map((workload) => {
    const template = workload.spec?.template;
    if (!template?.spec)
      throw new Error(`${workload.kind}/${workload.metadata.name} has no pod spec`);
    return {
      owner: `${workload.kind}/${workload.metadata.name}`,
      namespace: workload.metadata.namespace ?? 'default',
      replicasAtMost: hpaMax.get(workload.metadata.name) ?? workload.spec?.replicas ?? 1,
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
