import { describe, expect, it } from 'vitest';
import { find, type KubeObject } from './support/manifests.ts';
import { everySynthesis } from './support/variants.ts';
import { unknownFields, validateStrictly, validateWithModel } from './support/strict-schema.ts';

const deployment = (): KubeObject =>
  structuredClone(find(everySynthesis[0]!.objects, 'Deployment', 'tasks-backend'));
const route = (): KubeObject =>
  structuredClone(
    find(
      everySynthesis.find((s) => s.label === 'production')!.objects,
      'HTTPRoute',
      'tasks-backend',
    ),
  );

describe('schema validation (kubernetes-models, Kubernetes 1.34+; published CRD models), unknown fields refused', () => {
  it('the validator is live: a wrong type and a missing required field are rejected', () => {
    const broken = deployment() as any;
    broken.spec.template.spec.containers[0].ports[0].containerPort = 'abc';
    expect(() => validateStrictly(broken)).toThrow(/containerPort/);
    const noContainers = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x' }, spec: {} };
    expect(() => validateStrictly(noContainers)).toThrow(/containers/);
  });

  it('a planted typo in a built-in object passes kubernetes-models alone, and fails here, by path', () => {
    const typo = deployment() as any;
    typo.spec.replicaz = 3;
    typo.spec.template.spec.containers[0].imagePullPolicyy = 'Always';
    // The gap this check closes: the published model accepts both typos.
    expect(() => validateWithModel(typo)).not.toThrow();
    expect(unknownFields(typo)).toEqual([
      '.spec.replicaz',
      '.spec.template.spec.containers[0].imagePullPolicyy',
    ]);
    expect(() => validateStrictly(typo)).toThrow(
      'Deployment/tasks-backend: unknown fields .spec.replicaz, .spec.template.spec.containers[0].imagePullPolicyy',
    );
  });

  it('a planted typo in a CRD object (HTTPRoute) passes its model alone, and fails here', () => {
    const typo = route() as any;
    typo.spec.parentRefs[0].sectionNam = 'https';
    expect(() => validateWithModel(typo)).not.toThrow();
    expect(() => validateStrictly(typo)).toThrow(
      /unknown fields \.spec\.parentRefs\[0\]\.sectionNam$/,
    );
  });

  it('maps (labels, annotations, ConfigMap data) may hold any key: they are not unknown fields', () => {
    const object = deployment() as any;
    object.metadata.labels['example.com/anything'] = 'x';
    object.spec.template.metadata.annotations['another/key'] = 'y';
    expect(unknownFields(object)).toEqual([]);
  });

  describe.each(everySynthesis)('$label', ({ env, objects }) => {
    it('every object validates against its schema, with unknown fields refused', () => {
      expect(objects.length).toBeGreaterThan(0);
      const problems = objects.flatMap((object) => {
        try {
          validateStrictly(object);
          return [];
        } catch (error) {
          return [(error as Error).message];
        }
      });
      expect(problems).toEqual([]);
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
  });
});
