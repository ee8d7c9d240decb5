import type { EnvironmentSettings } from '../environment.ts';

/**
 * Production with its own PostgreSQL StatefulSet, autoscaled backend, an Ingress and a ServiceMonitor
 * for kube-prometheus-stack.
 * Budget: (maxReplicas 8 + maxSurge 1) x (pool 10 + probe 1) + reserve 10 = 109 < max_connections 150.
 */
export const production: EnvironmentSettings = {
  name: 'production',
  namespace: 'tasks',
  image: { repository: 'ghcr.io/example/tasks-backend', tag: '0.1.0' },
  backend: {
    autoscaling: { minReplicas: 3, maxReplicas: 8, targetCpuUtilizationPercent: 70 },
    maxSurge: 1,
    resources: {
      cpuRequestMillis: 250,
      cpuLimitMillis: 1000,
      memoryRequestMiB: 512,
      memoryLimitMiB: 512,
    },
    poolMax: 10,
  },
  database: {
    mode: 'in-cluster',
    storageSize: '20Gi',
    resources: {
      cpuRequestMillis: 500,
      cpuLimitMillis: 2000,
      memoryRequestMiB: 1024,
      memoryLimitMiB: 1024,
    },
    maxConnections: 150,
    reservedConnections: 10,
  },
  ingress: { host: 'tasks.example.com', tlsSecretName: 'tasks-example-com-tls' },
  monitoring: { prometheusOperator: { releaseLabel: 'kube-prometheus-stack' } },
};
