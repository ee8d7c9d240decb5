import type { IStatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import type { IIngress } from 'kubernetes-models/networking.k8s.io/v1/Ingress';
import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import type { IService } from 'kubernetes-models/v1/Service';
import { describe, expect, it, onTestFinished } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configKeys, loadConfig } from '../../backend/src/config.ts';
import { backupNames, databaseSecret, requiredSecretKeys } from '../names.ts';
import { pinnedPostgresImage } from '../postgres-image.ts';
import {
  configMapData,
  find,
  matchesLabels,
  ofKind,
  podTemplates,
  type PodTemplate,
} from './support/manifests.ts';
import { everySynthesis } from './support/variants.ts';
import { NetworkPolicyEvaluator, selectorMatches } from './support/network-policy-evaluator.ts';

describe.each(everySynthesis)('$label', ({ env, objects }) => {
  const templates = podTemplates(objects);
  const services = ofKind<IService>(objects, 'Service');
  const policies = ofKind<INetworkPolicy>(objects, 'NetworkPolicy');
  const backend = templates.find((t) => t.owner === 'Deployment/tasks-backend');
  if (!backend) throw new Error('no backend Deployment');
  const [backendContainer] = backend.containers;
  if (!backendContainer) throw new Error('no backend container');
  const selectedBy = (selector: Record<string, string> | undefined): PodTemplate[] =>
    templates.filter((t) => selector !== undefined && matchesLabels(selector, t.labels));

  it('every Service selects a pod template and targets declared container ports (kube-linter dangling-service, invalid-target-ports; kube-score service-targets-pod)', () => {
    expect(services.length).toBeGreaterThan(0);
    for (const service of services) {
      const pods = selectedBy(service.spec?.selector);
      expect(pods, service.metadata.name).toHaveLength(1);
      const declared = pods.flatMap((p) => p.containers.flatMap((c) => c.ports ?? []));
      for (const port of service.spec?.ports ?? []) {
        expect(port.name, service.metadata.name).toMatch(/^[a-z][a-z0-9-]*$/);
        const target = port.targetPort ?? port.port;
        expect(
          declared.some((d) => d.containerPort === target || d.name === target),
          `${service.metadata.name}:${port.name ?? ''}`,
        ).toBe(true);
      }
    }
    const backendService = find<IService>(objects, 'Service', 'tasks-backend');
    expect(backendService.spec?.ports?.map((p) => p.name)).toEqual(['http', 'metrics']);
  });

  it('workload selectors match their own pod template (kube-linter mismatching-selector)', () => {
    for (const kind of ['Deployment', 'StatefulSet']) {
      for (const workload of ofKind<{
        spec: { selector: { matchLabels: Record<string, string> } };
      }>(objects, kind)) {
        const template = templates.find((t) => t.owner === `${kind}/${workload.metadata.name}`);
        expect(template && matchesLabels(workload.spec.selector.matchLabels, template.labels)).toBe(
          true,
        );
        // The selector must not select the other component's pods.
        expect(selectedBy(workload.spec.selector.matchLabels)).toHaveLength(1);
      }
    }
  });

  it('every NetworkPolicy selects at least one pod, every same-namespace pod peer too (kube-linter dangling-networkpolicy, dangling-networkpolicypeer-podselector; kube-score networkpolicy-targets-pod)', () => {
    expect(policies.length).toBeGreaterThan(0);
    for (const policy of policies) {
      const selected = templates.filter((t) =>
        selectorMatches(policy.spec?.podSelector ?? {}, t.labels),
      );
      expect(selected.length, policy.metadata?.name).toBeGreaterThan(0);
      const rules = [
        ...(policy.spec?.ingress ?? []).flatMap((r) => r.from ?? []),
        ...(policy.spec?.egress ?? []).flatMap((r) => r.to ?? []),
      ];
      for (const peer of rules) {
        if (peer.podSelector && !peer.namespaceSelector) {
          expect(
            templates.some((t) => selectorMatches(peer.podSelector ?? {}, t.labels)),
            policy.metadata?.name,
          ).toBe(true);
        }
      }
    }
  });

  it('every pod is isolated for ingress and egress (kube-linter non-isolated-pod, kube-score pod-networkpolicy)', () => {
    const evaluator = new NetworkPolicyEvaluator(policies, []);
    for (const t of templates) {
      const pod = { kind: 'pod', name: t.owner, namespace: t.namespace, labels: t.labels } as const;
      expect(evaluator.isolating(pod, 'Ingress').length, t.owner).toBeGreaterThan(0);
      expect(evaluator.isolating(pod, 'Egress').length, t.owner).toBeGreaterThan(0);
    }
    // Explicit names: cdk8s-plus would otherwise generate one containing "undefined".
    for (const policy of policies)
      expect(policy.metadata?.name).toMatch(/^(default-deny-all|tasks-[a-z-]+)$/);
  });

  it('the StatefulSet names a headless Service that selects its pods (kube-score statefulset-has-servicename)', () => {
    const statefulSets = ofKind<IStatefulSet>(objects, 'StatefulSet');
    expect(statefulSets).toHaveLength(env.database.mode === 'in-cluster' ? 1 : 0);
    for (const sts of statefulSets) {
      const headless = find<IService>(objects, 'Service', sts.spec?.serviceName ?? '');
      expect(headless.spec?.clusterIP).toBe('None');
      expect(
        matchesLabels(headless.spec?.selector, sts.spec?.template.metadata?.labels ?? {}),
      ).toBe(true);
    }
  });

  it('HPA, PDB, HTTPRoute, Ingress and ServiceMonitor point at objects that exist; the route follows the choice', () => {
    const routes = ofKind<{
      spec: {
        parentRefs: { name: string; namespace: string; sectionName?: string }[];
        hostnames: string[];
        rules: { backendRefs: { name: string; port: number }[] }[];
      };
    }>(objects, 'HTTPRoute');
    const ingresses = ofKind<IIngress>(objects, 'Ingress');
    expect([routes.length, ingresses.length]).toEqual([
      env.expose?.kind === 'gateway' ? 1 : 0,
      env.expose?.kind === 'ingress' ? 1 : 0,
    ]);
    for (const route of routes) {
      if (env.expose?.kind !== 'gateway') throw new Error('HTTPRoute without a gateway');
      expect(route.spec.parentRefs).toEqual([
        expect.objectContaining({
          name: env.expose.gateway.name,
          namespace: env.expose.gateway.namespace,
        }),
      ]);
      expect(route.spec.parentRefs[0]?.sectionName).toBe(env.expose.gateway.sectionName);
      expect(route.spec.hostnames).toEqual([env.expose.host]);
      for (const ref of route.spec.rules.flatMap((r) => r.backendRefs)) {
        const service = find<IService>(objects, 'Service', ref.name);
        expect(service.spec?.ports?.find((p) => p.port === ref.port)?.name).toBe('http');
      }
    }
    for (const ingress of ingresses) {
      if (env.expose?.kind !== 'ingress') throw new Error('Ingress without an ingress setting');
      expect(ingress.spec?.ingressClassName).toBe(env.expose.className);
      expect(ingress.metadata?.annotations ?? {}).toEqual(env.expose.annotations);
      expect(ingress.spec?.rules?.map((r) => r.host)).toEqual([env.expose.host]);
    }
    for (const hpa of ofKind<{ spec: { scaleTargetRef: { kind: string; name: string } } }>(
      objects,
      'HorizontalPodAutoscaler',
    )) {
      expect(() =>
        find(objects, hpa.spec.scaleTargetRef.kind, hpa.spec.scaleTargetRef.name),
      ).not.toThrow();
    }
    for (const pdb of ofKind<{ spec: { selector: { matchLabels: Record<string, string> } } }>(
      objects,
      'PodDisruptionBudget',
    )) {
      expect(selectedBy(pdb.spec.selector.matchLabels), pdb.metadata.name).toHaveLength(1);
    }
    for (const ingress of ofKind<IIngress>(objects, 'Ingress')) {
      for (const path of ingress.spec?.rules?.flatMap((r) => r.http?.paths ?? []) ?? []) {
        const service = find<IService>(objects, 'Service', path.backend.service?.name ?? '');
        const port = service.spec?.ports?.find(
          (p) => p.port === path.backend.service?.port?.number,
        );
        // Only the API port is published; metrics stay in the cluster.
        expect(port?.name).toBe('http');
      }
    }
    for (const monitor of ofKind<{
      spec: { selector: { matchLabels: Record<string, string> }; endpoints: { port: string }[] };
    }>(objects, 'ServiceMonitor')) {
      // The operator scrapes the selected Services that have the endpoint's named port: one each.
      const port = monitor.spec.endpoints[0]?.port;
      const targets = services.filter(
        (s) =>
          matchesLabels(monitor.spec.selector.matchLabels, s.metadata.labels ?? {}) &&
          (s.spec?.ports ?? []).some((p) => p.name === port),
      );
      expect(targets.map((s) => s.metadata.name)).toEqual([
        monitor.metadata.name === 'tasks-backend' ? 'tasks-backend' : 'tasks-postgres-metrics',
      ]);
    }
    const monitors = ofKind(objects, 'ServiceMonitor').map((m) => m.metadata.name);
    expect(monitors).toEqual(
      !env.monitoring.prometheusOperator
        ? []
        : env.database.mode === 'in-cluster'
          ? ['tasks-backend', 'tasks-postgres']
          : ['tasks-backend'],
    );
  });

  it('every env var the backend gets is one backend/src/config.ts reads, and loadConfig accepts them', () => {
    const known = new Set<string>(configKeys);
    const fromConfigMaps = (backendContainer.envFrom ?? []).map((source) => {
      expect(source.configMapRef?.name, 'only ConfigMaps via envFrom').toBeDefined();
      expect(source.prefix).toBeUndefined();
      return configMapData(objects, source.configMapRef?.name ?? '');
    });
    const record: Record<string, string> = Object.assign({}, ...fromConfigMaps) as Record<
      string,
      string
    >;
    // Secret files (DATABASE_URL_FILE) point into the mounted Secret: give them a real file of
    // the right shape, as the kubelet would.
    const secretDir = mkdtempSync(join(tmpdir(), 'k8s-secret-'));
    for (const variable of backendContainer.env ?? []) {
      expect(variable.valueFrom, `${variable.name}: no env value from a Secret`).toBeUndefined();
      expect(variable.value, variable.name).toBeDefined();
      const value = variable.value ?? '';
      if (value.startsWith(`${databaseSecret.mountPath}/`)) {
        const file = join(secretDir, value.slice(databaseSecret.mountPath.length + 1));
        writeFileSync(file, 'postgres://tasks:placeholder@tasks-postgres:5432/tasks\n');
        record[variable.name] = file;
      } else {
        record[variable.name] = value;
      }
    }
    onTestFinished(() => rmSync(secretDir, { recursive: true, force: true }));
    const unknown = Object.keys(record).filter((key) => !known.has(key));
    expect(unknown).toEqual([]);
    const config = loadConfig(record);
    expect(config.env).toBe('production');
    expect(config.database.url).toBeDefined();
    expect(config.database.migrateOnStart).toBe(true);
    expect(config.database.poolMax).toBe(env.backend.poolMax);
    expect(config.port).toBe(backendContainer.ports?.find((p) => p.name === 'http')?.containerPort);
    expect(config.metricsPort).toBe(
      backendContainer.ports?.find((p) => p.name === 'metrics')?.containerPort,
    );
  });

  it('Secret references (env refs and mounted files) name exactly the keys the README tells operators to create', () => {
    const refs = templates.flatMap((t) => [
      ...t.containers.flatMap((c) =>
        (c.env ?? []).flatMap((e) => (e.valueFrom?.secretKeyRef ? [e.valueFrom.secretKeyRef] : [])),
      ),
      ...(t.spec.volumes ?? []).flatMap((v) =>
        v.secret
          ? (v.secret.items ?? []).map((item) => ({ name: v.secret?.secretName, key: item.key }))
          : [],
      ),
    ]);
    expect(new Set(refs.map((k) => k.name))).toEqual(new Set([databaseSecret.name]));
    expect([...new Set(refs.map((k) => k.key))].sort()).toEqual(
      requiredSecretKeys(env.database.mode).sort(),
    );
    // Every Secret volume names its items: a new key in the Secret never appears in a pod unasked.
    for (const t of templates)
      for (const v of t.spec.volumes ?? [])
        if (v.secret) expect(v.secret.items, t.owner).toBeDefined();
  });

  it('terminationGracePeriodSeconds > (SHUTDOWN_DELAY_MS + SHUTDOWN_TIMEOUT_MS)/1000, and SHUTDOWN_DELAY_MS >= readiness period', () => {
    const settings = configMapData(objects, 'tasks-backend-config');
    const delayMs = Number(settings['SHUTDOWN_DELAY_MS']);
    const timeoutMs = Number(settings['SHUTDOWN_TIMEOUT_MS']);
    expect(delayMs).toBeGreaterThan(0);
    expect(backend.spec.terminationGracePeriodSeconds).toBeGreaterThan(
      (delayMs + timeoutMs) / 1000,
    );
    const period = backendContainer.readinessProbe?.periodSeconds ?? 10;
    expect(delayMs).toBeGreaterThanOrEqual(period * 1000);
  });

  it('the heap ceiling is about 75 % of the memory limit, run in the image CMD exec form', () => {
    const limit = String(backendContainer.resources?.limits?.['memory']);
    const limitMiB = Number(/^(\d+)Mi$/.exec(limit)?.[1]);
    expect(backendContainer.command).toEqual([
      'node',
      `--max-old-space-size=${Math.floor(limitMiB * 0.75)}`,
      'backend/dist/main.js',
    ]);
    expect(backendContainer.args).toBeUndefined();
  });

  it('Prometheus annotations name the metrics port; only /tmp is writable, the Secret read-only', () => {
    const metricsPort = backendContainer.ports?.find((p) => p.name === 'metrics')?.containerPort;
    expect(backend.annotations).toMatchObject({
      'prometheus.io/scrape': 'true',
      'prometheus.io/port': String(metricsPort),
      'prometheus.io/path': '/metrics',
    });
    const mounts = backendContainer.volumeMounts ?? [];
    expect(mounts.filter((m) => !m.readOnly).map((m) => m.mountPath)).toEqual(['/tmp']);
    expect(mounts.filter((m) => m.readOnly).map((m) => m.mountPath)).toEqual([
      databaseSecret.mountPath,
    ]);
    const tmp = backend.spec.volumes?.find((v) => v.name === mounts[0]?.name);
    expect(tmp?.emptyDir).toBeDefined();
  });

  it('migrations: every replica runs them at start under the advisory lock, so there is no migration Job', () => {
    expect(configMapData(objects, 'tasks-backend-config')['MIGRATE_ON_START']).toBe('true');
    // The only Job is a restore, and only when asked for.
    for (const job of ofKind(objects, 'Job'))
      expect(job.metadata.name).toBe(backupNames.restoreJob);
  });

  it('PostgreSQL: pinned image, PGDATA below the mount, memory /dev/shm, claim template, fast preStop (none in external mode)', () => {
    const database = env.database;
    if (database.mode === 'external') {
      expect(ofKind(objects, 'StatefulSet')).toEqual([]);
      expect(services.map((s) => s.metadata.name)).toEqual(['tasks-backend']);
      return;
    }
    const sts = find<IStatefulSet>(objects, 'StatefulSet', 'tasks-postgres');
    const pod = sts.spec?.template.spec;
    const [container] = pod?.containers ?? [];
    // The one pin docker-compose.yml declares, for the server and for its backups alike.
    const pin = pinnedPostgresImage();
    expect(pin).toMatch(/^postgres:\d+\.\d+-bookworm$/);
    expect(container?.image).toBe(pin);
    for (const t of templates.filter((t) => t.labels['app.kubernetes.io/component'] === 'backup'))
      for (const c of t.containers) expect(c.image, t.owner).toBe(pin);
    const pgdata = container?.env?.find((e) => e.name === 'PGDATA')?.value ?? '';
    const mountOf = (name: string) =>
      container?.volumeMounts?.find((m) => m.name === name)?.mountPath;
    expect(pgdata.startsWith(`${mountOf('data') ?? '?'}/`)).toBe(true);
    expect(mountOf('shm')).toBe('/dev/shm');
    expect(pod?.volumes?.find((v) => v.name === 'shm')?.emptyDir?.medium).toBe('Memory');
    const [claim] = sts.spec?.volumeClaimTemplates ?? [];
    expect(claim?.metadata?.name).toBe('data');
    expect(claim?.spec?.resources?.requests?.['storage']).toBe(database.storageSize);
    expect(container?.startupProbe?.exec?.command?.join(' ')).toContain('pg_isready -h 127.0.0.1');
    const { periodSeconds = 10, failureThreshold = 3 } = container?.startupProbe ?? {};
    expect(
      periodSeconds * failureThreshold,
      'seconds allowed for the first initdb',
    ).toBeGreaterThanOrEqual(120);
    expect(container?.lifecycle?.preStop?.exec?.command?.join(' ')).toContain('-m fast');
    expect(pod?.terminationGracePeriodSeconds).toBeGreaterThan(50);
  });
});
