import type { EnvironmentSettings } from '../environment.ts';

/**
 * Staging on a managed PostgreSQL (external-database mode): no StatefulSet, and backend egress is
 * limited to the database's private address. The Secret then holds only DATABASE_URL.
 * Budget: (maxReplicas 4 + maxSurge 1) x (pool 10 + probe 1) + reserve 10 = 65 < max_connections 100.
 */
export const staging: EnvironmentSettings = {
  name: 'staging',
  namespace: 'tasks-staging',
  image: { repository: 'ghcr.io/example/tasks-backend', tag: '0.1.0' },
  backend: {
    autoscaling: { minReplicas: 2, maxReplicas: 4 },
    resources: {
      cpuRequestMillis: 100,
      cpuLimitMillis: 500,
      memoryRequestMiB: 384,
      memoryLimitMiB: 384,
    },
  },
  database: { mode: 'external', cidr: '10.20.0.15/32', port: 5432, maxConnections: 100 },
  monitoring: { prometheusOperator: { releaseLabel: 'kube-prometheus-stack' } },
};
