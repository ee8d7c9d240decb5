import * as models from 'kubernetes-models';
import { describe, expect, it } from 'vitest';
import { synthesizedEnvironments, type KubeObject } from './support/manifests.ts';

interface ModelClass {
  readonly apiVersion: string;
  readonly kind: string;
  new (data: unknown): { validate(): void };
}

/** apiVersion/kind -> model class, found by walking kubernetes-models' exports. */
function modelRegistry(): Map<string, ModelClass> {
  const registry = new Map<string, ModelClass>();
  const visit = (exports: object, depth: number): void => {
    for (const value of Object.values(exports)) {
      if (typeof value === 'function') {
        const candidate = value as Partial<ModelClass>;
        if (typeof candidate.apiVersion === 'string' && typeof candidate.kind === 'string') {
          registry.set(`${candidate.apiVersion}/${candidate.kind}`, value as ModelClass);
        }
      } else if (value && typeof value === 'object' && depth < 3) {
        visit(value as object, depth + 1);
      }
    }
  };
  visit(models, 0);
  return registry;
}

const registry = modelRegistry();
const crdKinds = new Set([
  'monitoring.coreos.com/v1/ServiceMonitor',
  // Its shape is checked in monitoring.test.ts.
  'monitoring.coreos.com/v1/PrometheusRule',
]);

function validate(object: KubeObject): void {
  const model = registry.get(`${object.apiVersion}/${object.kind}`);
  if (!model) throw new Error(`no schema for ${object.apiVersion} ${object.kind}`);
  new model(object).validate();
}

describe('schema validation with kubernetes-models (Kubernetes 1.33 OpenAPI, offline)', () => {
  it('the validator is live: a wrong type and a missing required field are rejected', () => {
    const broken = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'x' },
      spec: {
        selector: {},
        template: { spec: { containers: [{ name: 'c', ports: [{ containerPort: 'abc' }] }] } },
      },
    };
    expect(() => validate(broken as unknown as KubeObject)).toThrow();
    const noContainers = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x' }, spec: {} };
    expect(() => validate(noContainers as unknown as KubeObject)).toThrow(/containers/);
  });

  describe.each(synthesizedEnvironments)('$env.name', ({ env, objects }) => {
    it('every built-in object validates against its schema', () => {
      const builtIn = objects.filter((o) => !crdKinds.has(`${o.apiVersion}/${o.kind}`));
      expect(builtIn.length).toBeGreaterThan(0);
      for (const object of builtIn) {
        expect(() => validate(object), `${object.kind}/${object.metadata.name}`).not.toThrow();
      }
    });

    it('every namespaced object lives in the environment namespace, names unique per kind', () => {
      const seen = new Set<string>();
      for (const object of objects) {
        const key = `${object.kind}/${object.metadata.name}`;
        expect(seen.has(key), `duplicate ${key}`).toBe(false);
        seen.add(key);
        if (object.kind === 'Namespace') expect(object.metadata.name).toBe(env.namespace);
        else expect(object.metadata.namespace, key).toBe(env.namespace);
      }
    });

    it('ServiceMonitor (CRD, checked by hand): shape prometheus-operator accepts', () => {
      const monitors = objects.filter((o) => o.kind === 'ServiceMonitor');
      if (!env.monitoring.prometheusOperator) {
        expect(monitors).toEqual([]);
        return;
      }
      expect(monitors).toHaveLength(1);
      const [monitor] = monitors;
      expect(monitor).toMatchObject({
        apiVersion: 'monitoring.coreos.com/v1',
        metadata: { labels: { release: env.monitoring.prometheusOperator.releaseLabel } },
        spec: {
          selector: { matchLabels: expect.any(Object) as unknown },
          namespaceSelector: { matchNames: [env.namespace] },
          endpoints: [{ port: 'metrics', path: '/metrics' }],
        },
      });
      const spec = monitor?.['spec'] as { endpoints: Record<string, unknown>[] };
      const allowed = new Set(['port', 'path', 'scheme', 'interval', 'scrapeTimeout']);
      for (const endpoint of spec.endpoints) {
        for (const field of Object.keys(endpoint)) expect(allowed, field).toContain(field);
        expect(endpoint['interval']).toMatch(/^\d+(ms|s|m|h)$/);
        expect(endpoint['scrapeTimeout']).toMatch(/^\d+(ms|s|m|h)$/);
      }
    });
  });
});
