import type { EnvironmentSettings } from '../environment.ts';

/**
 * Production with its own PostgreSQL StatefulSet and hourly backups, an autoscaled backend behind a
 * Gateway API HTTPRoute, and prometheus-operator objects for kube-prometheus-stack.
 * Connections: (maxReplicas 8 + maxSurge 1) x (pool 10 + probe 1) + reserve 10 = 109 < 150.
 * Memory (2 GiB): shared_buffers 512 MB, work_mem 2 MB, maintenance_work_mem 64 MB (postgres-memory.ts).
 * The image and host are placeholders: CI sets IMAGE_REPOSITORY and K8S_HOST (k8s/README.md).
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
      memoryRequestMiB: 2048,
      memoryLimitMiB: 2048,
    },
    maxConnections: 150,
    reservedConnections: 10,
  },
  // The platform team's Gateway terminates TLS for the host; the route attaches to its HTTPS listener.
  expose: {
    kind: 'gateway',
    host: 'tasks.example.com',
    gateway: { name: 'public', namespace: 'gateway-system', sectionName: 'https' },
  },
  monitoring: { prometheusOperator: { releaseLabel: 'kube-prometheus-stack' } },
};
