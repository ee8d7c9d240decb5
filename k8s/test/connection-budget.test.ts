import { describe, expect, it } from 'vitest';
import {
  connectionBudgetProblem,
  maxConnectionsFromStatefulSet,
  PROBE_CONNECTIONS_PER_REPLICA,
} from '../connection-budget.ts';
import { EnvironmentError, type EnvironmentSettings } from '../environment.ts';
import { production } from '../environments/production.ts';
import { staging } from '../environments/staging.ts';
import { find, synthesize, synthesizedEnvironments } from './support/manifests.ts';

describe('connection budget: (maxReplicas + maxSurge) x (pool + probe) + reserve < max_connections', () => {
  it.each(synthesizedEnvironments)(
    '$env.name fits, with max_connections read from what was synthesized',
    ({ env, objects }) => {
      const maxConnections =
        env.database.mode === 'in-cluster'
          ? maxConnectionsFromStatefulSet(find(objects, 'StatefulSet', 'tasks-postgres'))
          : env.database.maxConnections;
      expect(maxConnections).toBe(env.database.maxConnections);
      const peak =
        (env.backend.autoscaling?.maxReplicas ?? env.backend.replicas) + env.backend.maxSurge;
      const perPod = env.backend.poolMax + PROBE_CONNECTIONS_PER_REPLICA;
      const needed = peak * perPod + env.database.reservedConnections;
      console.log(
        `${env.name}: ${peak} pods x (pool ${env.backend.poolMax} + probe ${PROBE_CONNECTIONS_PER_REPLICA}) + reserve ${env.database.reservedConnections} = ${needed} < max_connections ${maxConnections ?? '?'}`,
      );
      expect(needed).toBeLessThan(maxConnections ?? 0);
    },
  );

  it('when the pool grows past the budget, then synth throws and says which numbers to change', () => {
    const greedy: EnvironmentSettings = {
      ...production,
      backend: { ...production.backend, poolMax: 20 },
    };
    expect(() => synthesize(greedy)).toThrow(
      'environment "production": connection budget exceeded: (maxReplicas 8 + maxSurge 1) x (pool 20 + probe 1) + reserve 10 = 199, which is not below max_connections 150 (from the StatefulSet args). Lower the replicas, surge or pool size, or raise max_connections.',
    );
  });

  it('when max_connections shrinks in the StatefulSet, then synth throws', () => {
    const small: EnvironmentSettings = {
      ...production,
      database: {
        ...production.database,
        mode: 'in-cluster',
        storageSize: '20Gi',
        maxConnections: 90,
      } as EnvironmentSettings['database'],
    };
    expect(() => synthesize(small)).toThrow(
      /= 109, which is not below max_connections 90 \(from the StatefulSet args\)/,
    );
  });

  it('when an external database allows too few connections, then synth throws', () => {
    const tight: EnvironmentSettings = {
      ...staging,
      database: { mode: 'external', cidr: '10.20.0.15/32', maxConnections: 65 },
    };
    expect(() => synthesize(tight)).toThrow(
      /= 65, which is not below max_connections 65 \(as declared for the external database\)/,
    );
  });

  it('the budget is strict: exactly max_connections is too many, one below fits', () => {
    const base = {
      maxReplicas: 4,
      maxSurge: 1,
      poolMax: 10,
      reservedConnections: 10,
      maxConnectionsSource: 'test',
    };
    // (4 + 1) x (10 + 1) + 10 = 65
    expect(connectionBudgetProblem({ ...base, maxConnections: 65 })).toMatch(
      /= 65, which is not below max_connections 65/,
    );
    expect(connectionBudgetProblem({ ...base, maxConnections: 66 })).toBeUndefined();
  });

  it('max_connections is read from args in both "-c k=v" and "-ck=v" forms', () => {
    const sts = (args: string[]) => ({ spec: { template: { spec: { containers: [{ args }] } } } });
    expect(maxConnectionsFromStatefulSet(sts(['-c', 'max_connections=70']))).toBe(70);
    expect(maxConnectionsFromStatefulSet(sts(['-cmax_connections=80']))).toBe(80);
    expect(maxConnectionsFromStatefulSet(sts(['-c', 'shared_buffers=1GB']))).toBeUndefined();
  });
});

describe('image tag rules', () => {
  it.each(['latest', 'LATEST', '', '  '])('when the tag is %j, then synth refuses it', (tag) => {
    expect(() => synthesize(production, { overrides: { imageTag: tag } })).toThrow(
      EnvironmentError,
    );
    expect(() => synthesize(production, { overrides: { imageTag: tag } })).toThrow(
      /image tag (is empty|"\w+" is mutable)/,
    );
  });

  it('when IMAGE_TAG is given, then it replaces the environment tag everywhere', () => {
    const { objects } = synthesize(production, { overrides: { imageTag: '1.4.2' } });
    const deployment = find<{ spec: { template: { spec: { containers: { image: string }[] } } } }>(
      objects,
      'Deployment',
      'tasks-backend',
    );
    expect(deployment.spec.template.spec.containers[0]?.image).toBe(
      'ghcr.io/example/tasks-backend:1.4.2',
    );
  });

  it('when the shutdown delay is shorter than the readiness period, then synth refuses it', () => {
    const hasty: EnvironmentSettings = {
      ...production,
      backend: { ...production.backend, shutdownDelayMs: 1000 },
    };
    expect(() => synthesize(hasty)).toThrow(
      /shutdownDelayMs 1000 is shorter than the readiness period \(5000 ms\)/,
    );
  });
});
