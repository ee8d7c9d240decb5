import { ExternalSecret } from '@kubernetes-models/external-secrets/external-secrets.io/v1/ExternalSecret';
import { HTTPRoute } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute';
import { PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { SealedSecret } from '@kubernetes-models/sealed-secrets/bitnami.com/v1alpha1/SealedSecret';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { CronJob } from 'kubernetes-models/batch/v1/CronJob';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { Ingress } from 'kubernetes-models/networking.k8s.io/v1/Ingress';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { PersistentVolumeClaim } from 'kubernetes-models/v1/PersistentVolumeClaim';
import { Pod } from 'kubernetes-models/v1/Pod';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';

/**
 * Schema validation that also refuses unknown fields.
 *
 * kubernetes-models (and its CRD packages) compile the OpenAPI schemas into validators that check
 * types, required fields, enums and formats, but accept any field they do not know: a Deployment
 * with `replicaz` validates (tried; see schema.test.ts). The API server would drop such a field, or
 * refuse it under `kubectl apply --validate=strict`. So the validator runs on a proxy that records
 * every property it reads: a compiled validator reads each property its schema declares (present or
 * not) and iterates every key of a map. A key the validator never read, in an object whose schema
 * declared properties, is a field the schema does not have. Objects whose schema is free-form
 * (x-kubernetes-preserve-unknown-fields) are read as a whole, never by key, and are left alone.
 */

interface ModelClass {
  readonly apiVersion: string;
  readonly kind: string;
  readonly prototype: { validate(): void };
}

const models: readonly ModelClass[] = [
  Namespace,
  NetworkPolicy,
  PersistentVolumeClaim,
  ServiceAccount,
  ConfigMap,
  Deployment,
  StatefulSet,
  Service,
  PodDisruptionBudget,
  HorizontalPodAutoscaler,
  Ingress,
  CronJob,
  Job,
  Pod,
  // CRDs, from their published models.
  HTTPRoute,
  ServiceMonitor,
  PrometheusRule,
  ExternalSecret,
  SealedSecret,
];

const registry = new Map(models.map((model) => [`${model.apiVersion}/${model.kind}`, model]));

export function modelFor(object: { apiVersion: string; kind: string }): ModelClass {
  const model = registry.get(`${object.apiVersion}/${object.kind}`);
  if (!model) throw new Error(`no schema for ${object.apiVersion} ${object.kind}`);
  return model;
}

/** The published model's own check: types, required fields, enums, formats. Unknown fields pass. */
export function validateWithModel(object: { apiVersion: string; kind: string }): void {
  modelFor(object).prototype.validate.call(object);
}

/** Paths of the fields the object's schema does not declare (after the model's own check passed). */
export function unknownFields(object: { apiVersion: string; kind: string }): string[] {
  const reads = new WeakMap<object, Set<PropertyKey>>();
  const proxies = new WeakMap<object, object>();
  const track = (value: unknown): unknown => {
    if (value === null || typeof value !== 'object') return value;
    const known = proxies.get(value);
    if (known) return known;
    const read = new Set<PropertyKey>();
    reads.set(value, read);
    const proxy = new Proxy(value, {
      get(target, key, receiver) {
        read.add(key);
        return track(Reflect.get(target, key, receiver));
      },
      has(target, key) {
        read.add(key);
        return Reflect.has(target, key);
      },
    });
    proxies.set(value, proxy);
    return proxy;
  };
  modelFor(object).prototype.validate.call(track(object));

  const unknown: string[] = [];
  const walk = (node: unknown, path: string): void => {
    if (node === null || typeof node !== 'object') return;
    if (Array.isArray(node)) {
      node.forEach((item, i) => walk(item, `${path}[${i}]`));
      return;
    }
    const read = reads.get(node);
    const keys = Object.keys(node);
    if (read && read.size > 0) {
      for (const key of keys) if (!read.has(key)) unknown.push(`${path}.${key}`);
    }
    for (const key of keys) walk((node as Record<string, unknown>)[key], `${path}.${key}`);
  };
  walk(object, '');
  return unknown;
}

/** Throws, naming the object and every problem, unless it validates with unknown fields refused. */
export function validateStrictly(object: {
  apiVersion: string;
  kind: string;
  metadata?: { name?: string };
}): void {
  const what = `${object.kind}/${object.metadata?.name ?? '?'}`;
  try {
    validateWithModel(object);
  } catch (error) {
    throw new Error(`${what}: ${(error as Error).message}`, { cause: error });
  }
  const unknown = unknownFields(object);
  if (unknown.length > 0) throw new Error(`${what}: unknown fields ${unknown.join(', ')}`);
}
