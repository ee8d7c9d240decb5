import type { IPodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import type { IServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import type { IContainer } from 'kubernetes-models/v1/Container';
import { describe, expect, it } from 'vitest';
import { matchesLabels, ofKind, podTemplates, type PodTemplate } from './support/manifests.ts';
import { everySynthesis } from './support/variants.ts';

// Pod Security Standards "restricted" (and the "baseline" it includes), plus the default checks of
// kube-score and kube-linter, re-stated over the synthesized objects. Rule ids are in the test names.

const restrictedVolumeTypes = new Set([
  'configMap',
  'csi',
  'downwardAPI',
  'emptyDir',
  'ephemeral',
  'persistentVolumeClaim',
  'projected',
  'secret',
]);

function each(templates: PodTemplate[], check: (t: PodTemplate, c: IContainer) => void): void {
  expect(templates.length).toBeGreaterThan(0);
  for (const template of templates)
    for (const container of template.containers) check(template, container);
}

describe.each(everySynthesis)('$label', ({ env, objects }) => {
  const templates = podTemplates(objects);

  it('PSS: the namespace enforces the restricted profile', () => {
    const [namespace] = ofKind(objects, 'Namespace');
    expect(namespace?.metadata.labels?.['pod-security.kubernetes.io/enforce']).toBe('restricted');
  });

  it('PSS restricted runAsNonRoot + non-zero numeric uid/gid (kube-linter run-as-non-root)', () => {
    each(templates, (t, c) => {
      const pod = t.spec.securityContext ?? {};
      const ctx = c.securityContext ?? {};
      expect(ctx.runAsNonRoot ?? pod.runAsNonRoot, t.owner).toBe(true);
      const uid = ctx.runAsUser ?? pod.runAsUser;
      const gid = ctx.runAsGroup ?? pod.runAsGroup;
      expect(uid, t.owner).toBeGreaterThan(0);
      expect(gid, t.owner).toBeGreaterThan(0);
      expect(pod.fsGroup, t.owner).toBe(gid);
      // cdk8s-plus's container default is uid 25000, which the images do not own.
      expect([1000, 999], t.owner).toContain(uid);
    });
  });

  it('PSS restricted allowPrivilegeEscalation=false (kube-linter privilege-escalation-container)', () => {
    each(templates, (t, c) =>
      expect(c.securityContext?.allowPrivilegeEscalation, t.owner).toBe(false),
    );
  });

  it('PSS restricted capabilities drop ALL, add none (kube-linter drop-net-raw-capability)', () => {
    each(templates, (t, c) => {
      expect(c.securityContext?.capabilities?.drop, t.owner).toEqual(['ALL']);
      expect(c.securityContext?.capabilities?.add ?? [], t.owner).toEqual([]);
    });
  });

  it('PSS restricted seccompProfile RuntimeDefault (kube-score container-seccomp-profile)', () => {
    each(templates, (t, c) => {
      const type =
        c.securityContext?.seccompProfile?.type ?? t.spec.securityContext?.seccompProfile?.type;
      expect(type, t.owner).toBe('RuntimeDefault');
    });
  });

  it('PSS restricted volume types only; baseline: no hostPath (kube-linter sensitive-host-mounts, docker-sock)', () => {
    for (const t of templates) {
      for (const volume of t.spec.volumes ?? []) {
        const types = Object.keys(volume).filter((key) => key !== 'name');
        expect(
          types.every((type) => restrictedVolumeTypes.has(type)),
          `${t.owner} ${volume.name}`,
        ).toBe(true);
      }
    }
  });

  it('PSS baseline: no privileged, host namespaces, hostPort or unsafe sysctls (kube-linter privileged-container, host-network, host-pid, host-ipc, unsafe-sysctls, ssh-port; kube-score container-security-context-privileged)', () => {
    each(templates, (t, c) => {
      expect(c.securityContext?.privileged ?? false, t.owner).toBe(false);
      expect([t.spec.hostNetwork, t.spec.hostPID, t.spec.hostIPC].some(Boolean), t.owner).toBe(
        false,
      );
      expect((c.ports ?? []).some((p) => p.hostPort !== undefined || p.containerPort === 22)).toBe(
        false,
      );
      expect(t.spec.securityContext?.sysctls ?? [], t.owner).toEqual([]);
    });
  });

  it('read-only root filesystem (kube-score container-security-context-readonlyrootfilesystem, kube-linter no-read-only-root-fs)', () => {
    each(templates, (t, c) =>
      expect(c.securityContext?.readOnlyRootFilesystem, t.owner).toBe(true),
    );
  });

  it('requests and limits for cpu, memory, ephemeral-storage (kube-score container-resources, container-ephemeral-storage-request-and-limit; kube-linter unset-cpu-requirements, unset-memory-requirements)', () => {
    each(templates, (t, c) => {
      for (const kind of ['requests', 'limits'] as const) {
        for (const resource of ['cpu', 'memory', 'ephemeral-storage']) {
          expect(c.resources?.[kind]?.[resource], `${t.owner} ${kind}.${resource}`).toBeDefined();
        }
      }
    });
  });

  it('pinned image tags (kube-score container-image-tag, kube-linter latest-tag) and explicit IfNotPresent', () => {
    each(templates, (t, c) => {
      expect(c.image, t.owner).toMatch(/^[^:]+(:[\w][\w.-]*)$/);
      expect(c.image, t.owner).not.toMatch(/:latest$/);
      // kube-score's container-image-pull-policy asks for Always; with immutable tags IfNotPresent
      // is the deliberate choice (see k8s/README.md), and it must be explicit.
      expect(c.imagePullPolicy, t.owner).toBe('IfNotPresent');
    });
  });

  it('startup, readiness and liveness probes on every long-running container; none on batch pods, which end by themselves (kube-linter no-readiness-probe, no-liveness-probe; kube-score pod-probes)', () => {
    each(templates, (t, c) => {
      const probes = [c.startupProbe, c.readinessProbe, c.livenessProbe];
      if (t.longRunning)
        for (const probe of probes) expect(probe, `${t.owner} ${c.name}`).toBeDefined();
      else expect(probes.filter(Boolean), `${t.owner} ${c.name}`).toEqual([]);
    });
    const backend = templates.find((t) => t.owner === 'Deployment/tasks-backend');
    const [container] = backend?.containers ?? [];
    // kube-score pod-probes: readiness must not equal liveness, or a DB outage restarts every pod.
    expect(container?.readinessProbe?.httpGet?.path).toBe('/api/health/ready');
    expect(container?.livenessProbe?.httpGet?.path).toBe('/api/health/live');
    expect(container?.startupProbe?.httpGet?.path).toBe('/api/health/live');
  });

  it('probe ports are declared container ports (kube-linter liveness-port, readiness-port, startup-port)', () => {
    each(templates, (t, c) => {
      const declared = (c.ports ?? []).flatMap((p) => [p.name, p.containerPort]);
      for (const probe of [c.startupProbe, c.readinessProbe, c.livenessProbe]) {
        const port = probe?.httpGet?.port ?? probe?.tcpSocket?.port;
        if (port !== undefined) expect(declared, t.owner).toContain(port);
        // Named, so a renumbered port cannot leave a probe behind.
        if (probe?.httpGet) expect(typeof port, t.owner).toBe('string');
      }
    });
  });

  it('no service-account token in pods (Polaris automountServiceAccountToken; kube-linter non-existent-service-account, deprecated-service-account-field)', () => {
    const accounts = ofKind<IServiceAccount>(objects, 'ServiceAccount').map(
      (sa) => sa.metadata.name,
    );
    for (const t of templates) {
      expect(t.spec.automountServiceAccountToken, t.owner).toBe(false);
      expect((t.spec as { serviceAccount?: string }).serviceAccount, t.owner).toBeUndefined();
      const name = t.spec.serviceAccountName;
      if (name !== undefined) expect(accounts, t.owner).toContain(name);
    }
    for (const sa of ofKind<IServiceAccount>(objects, 'ServiceAccount')) {
      expect(sa.automountServiceAccountToken, sa.metadata.name).toBe(false);
    }
  });

  it('no required anti-affinity; preferred host spread and zone spread (ScheduleAnyway) for scalable workloads (kube-linter no-anti-affinity, kube-score deployment-has-host-podantiaffinity)', () => {
    for (const t of templates) {
      const anti = t.spec.affinity?.podAntiAffinity;
      expect(anti?.requiredDuringSchedulingIgnoredDuringExecution, t.owner).toBeUndefined();
      for (const constraint of t.spec.topologySpreadConstraints ?? []) {
        // DoNotSchedule would leave pods Pending on a cluster with fewer zones than replicas.
        expect(constraint.whenUnsatisfiable, t.owner).toBe('ScheduleAnyway');
      }
      if (t.owner.startsWith('Deployment/')) {
        const preferred = anti?.preferredDuringSchedulingIgnoredDuringExecution ?? [];
        const onHost = preferred.find(
          (p) => p.podAffinityTerm.topologyKey === 'kubernetes.io/hostname',
        );
        expect(onHost, t.owner).toBeDefined();
        expect(matchesLabels(onHost?.podAffinityTerm.labelSelector?.matchLabels, t.labels)).toBe(
          true,
        );
        const zones = (t.spec.topologySpreadConstraints ?? []).find(
          (c) => c.topologyKey === 'topology.kubernetes.io/zone',
        );
        expect(zones, t.owner).toMatchObject({ maxSkew: 1, matchLabelKeys: ['pod-template-hash'] });
        expect(matchesLabels(zones?.labelSelector?.matchLabels, t.labels), t.owner).toBe(true);
      }
    }
  });

  it('a PDB covers every workload that can run more than one pod, and never blocks a drain (kube-score deployment-has-poddisruptionbudget; kube-linter pdb-max-unavailable, pdb-min-available, pdb-unhealthy-pod-eviction-policy)', () => {
    const pdbs = ofKind<IPodDisruptionBudget>(objects, 'PodDisruptionBudget');
    const deployment = templates.find((t) => t.owner.startsWith('Deployment/'));
    expect(deployment).toBeDefined();
    for (const t of templates.filter((t) => t.owner.startsWith('Deployment/'))) {
      const covering = pdbs.filter((pdb) =>
        matchesLabels(pdb.spec?.selector?.matchLabels, t.labels),
      );
      expect(covering, t.owner).toHaveLength(1);
    }
    for (const pdb of pdbs) {
      expect(pdb.spec?.maxUnavailable, pdb.metadata.name).not.toBe(0);
      expect(pdb.spec?.minAvailable, pdb.metadata.name).toBeUndefined();
      expect(pdb.spec?.unhealthyPodEvictionPolicy).toBe('AlwaysAllow');
    }
  });

  it('HPA in autoscaled environments, and then no fixed replicas (kube-score deployment-targeted-by-hpa-does-not-have-replicas-configured, kube-linter dangling-horizontalpodautoscaler)', () => {
    const hpas = ofKind<{
      spec: {
        scaleTargetRef: { kind: string; name: string };
        minReplicas: number;
        maxReplicas: number;
      };
    }>(objects, 'HorizontalPodAutoscaler');
    const deployments = ofKind<{ spec: { replicas?: number } }>(objects, 'Deployment');
    if (env.backend.autoscaling) {
      expect(hpas).toHaveLength(1);
      expect(hpas[0]?.apiVersion).toBe('autoscaling/v2');
      expect(hpas[0]?.spec).toMatchObject({
        scaleTargetRef: { kind: 'Deployment', name: deployments[0]?.metadata.name },
        minReplicas: env.backend.autoscaling.minReplicas,
        maxReplicas: env.backend.autoscaling.maxReplicas,
      });
      expect(deployments[0]?.spec.replicas).toBeUndefined();
    } else {
      expect(hpas).toEqual([]);
      expect(deployments[0]?.spec.replicas).toBe(env.backend.replicas);
    }
  });

  it('RollingUpdate with maxUnavailable 0 (kube-linter no-rolling-update-strategy)', () => {
    const [deployment] = ofKind<{ spec: { strategy: unknown } }>(objects, 'Deployment');
    expect(deployment?.spec.strategy).toEqual({
      type: 'RollingUpdate',
      rollingUpdate: { maxUnavailable: 0, maxSurge: env.backend.maxSurge },
    });
  });

  it('no Secret objects; secrets only as mounted files, never env values (kube-linter env-var-secret, duplicate-env-var; kube-score environment-variable-key-duplication)', () => {
    expect(ofKind(objects, 'Secret')).toEqual([]);
    each(templates, (t, c) => {
      const names = (c.env ?? []).map((e) => e.name);
      expect(new Set(names).size, t.owner).toBe(names.length);
      for (const e of c.env ?? []) {
        if (!/PASSWORD|PASS\b|PASS_|SECRET|TOKEN|DATABASE_URL/i.test(e.name)) continue;
        // Only the `_FILE` convention: a path into a mounted Secret that holds that key.
        expect(e.name, `${t.owner} ${e.name}`).toMatch(/_FILE$/);
        const path = e.value ?? '';
        const mount = (c.volumeMounts ?? []).find((m) => path.startsWith(`${m.mountPath}/`));
        const volume = t.spec.volumes?.find((v) => v.name === mount?.name);
        expect(
          volume?.secret,
          `${t.owner} ${e.name}: ${path} is not in a mounted Secret`,
        ).toBeDefined();
        expect(mount?.readOnly, `${t.owner} ${e.name}`).toBe(true);
        const file = path.slice((mount?.mountPath.length ?? 0) + 1);
        expect(
          volume?.secret?.items?.map((item) => item.path),
          `${t.owner} ${e.name}`,
        ).toContain(file);
        // Group-readable at most: fsGroup gives the pod's group access, nobody else.
        expect((volume?.secret?.defaultMode ?? 0o644) & 0o007, `${t.owner} ${e.name}`).toBe(0);
      }
    });
  });

  it('stable API versions only (kube-score stable-version, kube-linter no-extensions-v1beta)', () => {
    // Sealed Secrets serves only bitnami.com/v1alpha1; every other object has a stable version.
    const onlyVersion = new Set(['bitnami.com/v1alpha1/SealedSecret']);
    for (const object of objects) {
      if (onlyVersion.has(`${object.apiVersion}/${object.kind}`)) continue;
      expect(object.apiVersion, object.kind).not.toMatch(/(alpha|beta)|^extensions\//);
    }
  });

  it('cdk8s-plus defaults did not leak (1000m/512Mi requests, uid 25000, TCP startup probe, Always pull, replicas 2)', () => {
    each(templates, (t, c) => {
      const { requests = {}, limits = {} } = c.resources ?? {};
      expect([requests['cpu'], requests['memory']], t.owner).not.toEqual(['1000m', '512Mi']);
      expect([limits['cpu'], limits['memory']], t.owner).not.toEqual(['1500m', '2048Mi']);
      expect(c.securityContext?.runAsUser, t.owner).not.toBe(25000);
      expect(c.startupProbe?.tcpSocket, t.owner).toBeUndefined();
      expect(c.imagePullPolicy, t.owner).not.toBe('Always');
    });
    const [deployment] = ofKind<{ spec: { replicas?: number } }>(objects, 'Deployment');
    expect(deployment?.spec.replicas).toBe(
      env.backend.autoscaling ? undefined : env.backend.replicas,
    );
  });
});
