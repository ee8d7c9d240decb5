import type { EnvironmentSettings } from '../environment.ts';

/**
 * A shared development cluster: one small replica, an in-cluster PostgreSQL with hourly backups,
 * no route (kubectl port-forward), annotations only.
 */
export const dev: EnvironmentSettings = {
  name: 'dev',
  namespace: 'tasks-dev',
  image: { repository: 'ghcr.io/example/tasks-backend', tag: '0.1.0' },
  backend: {
    replicas: 1,
    resources: {
      cpuRequestMillis: 100,
      cpuLimitMillis: 500,
      memoryRequestMiB: 256,
      memoryLimitMiB: 256,
    },
    poolMax: 5,
    logLevel: 'debug',
  },
  database: {
    mode: 'in-cluster',
    storageSize: '2Gi',
    resources: {
      cpuRequestMillis: 100,
      cpuLimitMillis: 500,
      memoryRequestMiB: 256,
      memoryLimitMiB: 512,
    },
    maxConnections: 50,
  },
};
